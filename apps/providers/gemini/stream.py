"""``streamGenerateContent?alt=sse`` -> OpenAI chat.completion.chunk dicts.

Each SSE ``data:`` line is a whole GenerateContentResponse holding the newly generated parts;
``usageMetadata`` is cumulative, so the last one seen is the request's usage. Function calls
arrive whole and are relayed as complete tool_call deltas.
https://ai.google.dev/api/generate-content#method:-models.streamgeneratecontent
"""

from __future__ import annotations

import time

import orjson

from apps.core.errors import UpstreamError
from apps.providers.gemini.errors import stream_error
from apps.providers.gemini.response import completion_id, finish_reason, split_parts, usage_from
from apps.providers.schemas import JSONDict, StreamChunk, Usage
from apps.providers.sse import SSEDataDecoder


class GeminiStreamDecoder(SSEDataDecoder):
    """One per request, stateful, not thread-safe. Raises UpstreamError for an error event."""

    __slots__ = (
        "_created",
        "_finished",
        "_id",
        "_model",
        "_pending",
        "_provider",
        "_started",
        "_tool_counts",
        "usage",
    )

    def __init__(self, provider: str, model: str) -> None:
        super().__init__()
        self._provider = provider
        self._model = model
        self._id: str | None = None
        self._created = int(time.time())
        self._started: set[int] = set()
        self._finished: set[int] = set()
        self._tool_counts: dict[int, int] = {}
        self._pending: UpstreamError | None = None
        self.usage: Usage | None = None

    def _chunks(self, payloads: list[bytes]) -> list[StreamChunk]:
        # An error event raises; chunks decoded before it in the same feed are returned first
        # and the error is raised by the next call.
        if self._pending is not None:
            raise self._pending
        out: list[StreamChunk] = []
        for payload in payloads:
            try:
                data = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError(
                    f"{self._provider} error: malformed stream event.", upstream_status=200
                ) from exc
            if isinstance(data, list):  # a JSON-array stream element, tolerated
                data = data[0] if data else {}
            error = stream_error(self._provider, data)
            if error is not None:
                if not out:
                    raise error
                self._pending = error
                break
            if isinstance(data, dict):
                out.extend(self._from_response(data))
        return out

    def _chunk(self, index: int, delta: JSONDict, reason: str | None = None) -> StreamChunk:
        head = {"id": self._id, "created": self._created, "model": self._model}
        return StreamChunk.chat(head, delta, reason, index)

    def _start(self, index: int, out: list[StreamChunk]) -> None:
        if index not in self._started:
            self._started.add(index)
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))

    def _from_response(self, data: JSONDict) -> list[StreamChunk]:
        if self._id is None:
            self._id = completion_id(data)
            if data.get("modelVersion"):
                self._model = str(data["modelVersion"])
        usage = usage_from(data.get("usageMetadata"))
        if usage is not None:
            self.usage = usage
        out: list[StreamChunk] = []
        candidates = data.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            feedback = data.get("promptFeedback")
            if isinstance(feedback, dict) and feedback.get("blockReason"):
                self._start(0, out)
                if 0 not in self._finished:
                    self._finished.add(0)
                    out.append(self._chunk(0, {}, "content_filter"))
            return out
        for position, candidate in enumerate(candidates):
            if isinstance(candidate, dict):
                self._candidate(candidate, position, out)
        return out

    def _candidate(self, candidate: JSONDict, position: int, out: list[StreamChunk]) -> None:
        index = candidate.get("index")
        index = index if isinstance(index, int) else position
        if index in self._finished:
            return
        self._start(index, out)
        content = candidate.get("content")
        parts = content.get("parts") if isinstance(content, dict) else None
        texts, thoughts, calls = split_parts(parts)
        if thoughts:
            out.append(self._chunk(index, {"reasoning_content": "".join(thoughts)}))
        if texts and any(texts):
            out.append(self._chunk(index, {"content": "".join(texts)}))
        if calls:
            first = self._tool_counts.get(index, 0)
            self._tool_counts[index] = first + len(calls)
            deltas = [{"index": first + n, **call} for n, call in enumerate(calls)]
            out.append(self._chunk(index, {"tool_calls": deltas}))
        reason = finish_reason(candidate.get("finishReason"), index in self._tool_counts)
        if reason is not None:
            self._finished.add(index)
            out.append(self._chunk(index, {}, reason))
