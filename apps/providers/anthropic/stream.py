"""Anthropic Messages SSE stream -> OpenAI ``chat.completion.chunk`` dicts.

Event flow (https://docs.anthropic.com/en/api/messages-streaming): ``message_start`` (a Message
with empty content and the input usage), per content block ``content_block_start`` /
``content_block_delta`` (``text_delta``, ``input_json_delta``, ``thinking_delta``,
``signature_delta``) / ``content_block_stop``, one or more ``message_delta`` (``stop_reason``
and cumulative ``usage``), ``message_stop``; ``ping`` and unknown events are ignored; ``error``
raises.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.anthropic.errors import stream_error
from apps.providers.anthropic.response import finish_reason, usage_from_anthropic
from apps.providers.schemas import JSONDict, StreamChunk, Usage
from apps.providers.sse import SSEEvent, SSEParser

_USAGE_KEYS = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "output_tokens_details",
)


class AnthropicStreamDecoder:
    """Created per request, stateful, never shared. Tool calls are numbered in the order their
    blocks start; a call's first chunk carries id, type and name, later ones argument text."""

    def __init__(self, model: str) -> None:
        self._parser = SSEParser()
        self._model = model
        self._id = ""
        self._created = int(time.time())
        self._raw_usage: JSONDict | None = None
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._stop_reason: str | None = None
        self._finished = False
        self._pending: UpstreamError | None = None  # raised on the next call

    @property
    def usage(self) -> Usage | None:
        return usage_from_anthropic(self._raw_usage)

    def feed(self, data: bytes) -> list[StreamChunk]:
        self._raise_pending()
        return self._handle(self._parser.feed(data))

    def finish(self) -> list[StreamChunk]:
        """Flush the parser; raises an error still pending (or arriving in the flush)."""
        self._raise_pending()
        out: list[StreamChunk] = []
        self._collect(self._parser.finish(), out)
        if not self._finished and self._stop_reason is not None:
            out.append(self._final_chunk())
        return out

    def _raise_pending(self) -> None:
        if self._pending is not None:
            err, self._pending = self._pending, None
            raise err

    def _handle(self, events: list[SSEEvent]) -> list[StreamChunk]:
        """Chunks for ``events``. An error event raises at once when nothing precedes it in
        this batch; otherwise the chunks before it are returned and the next call raises."""
        out: list[StreamChunk] = []
        try:
            self._collect(events, out)
        except UpstreamError as err:
            if not out:
                raise
            self._pending = err
        return out

    def _collect(self, events: list[SSEEvent], out: list[StreamChunk]) -> None:
        for event in events:
            if not event.data:
                continue
            try:
                data = orjson.loads(event.data)
            except orjson.JSONDecodeError as exc:
                raise UpstreamError(
                    "anthropic returned a stream event that is not valid JSON.",
                    upstream_status=200,
                ) from exc
            if not isinstance(data, dict):
                continue
            kind = event.event or data.get("type")
            delta = self._on_event(kind, data)
            if delta is not None:
                out.append(self._chunk(delta))
            elif kind == "message_stop" and not self._finished:
                out.append(self._final_chunk())

    def _on_event(self, kind: Any, data: JSONDict) -> JSONDict | None:
        """The OpenAI delta an event yields, or None."""
        if kind == "content_block_delta":
            return self._on_delta(data)
        if kind == "content_block_start":
            return self._on_block_start(data)
        if kind == "message_start":
            message = data.get("message")
            message = message if isinstance(message, dict) else {}
            self._id = str(message.get("id") or self._id)
            self._model = str(message.get("model") or self._model)
            if isinstance(message.get("usage"), dict):
                self._raw_usage = dict(message["usage"])
            return {"role": "assistant", "content": ""}
        if kind == "message_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("stop_reason"):
                self._stop_reason = str(delta["stop_reason"])
            self._merge_usage(data.get("usage"))
            return None
        if kind == "error":
            raise stream_error(data)
        return None  # ping, content_block_stop, message_stop, unknown events

    def _on_block_start(self, data: JSONDict) -> JSONDict | None:
        block = data.get("content_block")
        if not isinstance(block, dict):
            return None
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return {"content": block["text"]}
        if kind == "thinking" and block.get("thinking"):
            return {"reasoning_content": block["thinking"]}
        if kind != "tool_use":
            return None
        index = len(self._tool_index)
        self._tool_index[_int(data.get("index"))] = index
        initial = block.get("input")
        arguments = orjson.dumps(initial).decode() if initial else ""
        call = {
            "index": index,
            "id": str(block.get("id") or ""),
            "type": "function",
            "function": {"name": str(block.get("name") or ""), "arguments": arguments},
        }
        return {"tool_calls": [call]}

    def _on_delta(self, data: JSONDict) -> JSONDict | None:
        delta = data.get("delta")
        if not isinstance(delta, dict):
            return None
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return {"content": text} if isinstance(text, str) and text else None
        if kind == "input_json_delta":
            fragment = delta.get("partial_json")
            index = self._tool_index.get(_int(data.get("index")))
            if index is None or not isinstance(fragment, str) or not fragment:
                return None
            return {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
        if kind == "thinking_delta":
            text = delta.get("thinking")
            return {"reasoning_content": text} if isinstance(text, str) and text else None
        return None  # signature_delta, citations_delta, unknown deltas

    def _merge_usage(self, usage: Any) -> None:
        """message_delta usage is cumulative: its fields replace the message_start ones."""
        if not isinstance(usage, dict):
            return
        merged = dict(self._raw_usage or {})
        for key in _USAGE_KEYS:
            if usage.get(key) is not None:
                merged[key] = usage[key]
        self._raw_usage = merged

    def _chunk(self, delta: JSONDict, finish: str | None = None) -> StreamChunk:
        head = {"id": self._id, "created": self._created, "model": self._model}
        return StreamChunk.chat(head, delta, finish)

    def _final_chunk(self) -> StreamChunk:
        self._finished = True
        return self._chunk({}, finish_reason(self._stop_reason))


def _int(value: Any) -> int:
    return value if isinstance(value, int) else -1
