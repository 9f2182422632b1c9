"""ConverseStream event stream -> OpenAI ``chat.completion.chunk`` dicts.

Events (the ``:event-type`` header; the payload is the event's JSON):
messageStart, contentBlockStart (a toolUse start), contentBlockDelta (text, toolUse.input
fragments, reasoningContent), contentBlockStop, messageStop (stopReason), metadata (usage).
An ``:message-type`` of ``exception`` or ``error`` raises UpstreamError.
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStream.html
https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_ConverseStreamOutput.html
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from apps.core.errors import UpstreamError
from apps.providers.bedrock.errors import bedrock_error, stream_exception
from apps.providers.bedrock.eventstream import EventMessage, EventStreamDecoder, EventStreamError
from apps.providers.bedrock.response import finish_reason, new_completion_id, usage_from_bedrock
from apps.providers.schemas import JSONDict, StreamChunk, Usage


def _malformed(detail: str) -> UpstreamError:
    return UpstreamError(
        f"bedrock returned a malformed event stream: {detail}", upstream_status=200
    )


class BedrockStreamDecoder:
    """One per request. ``usage`` is set once the ``metadata`` event has arrived.

    An exception event raises UpstreamError; when chunks decoded from the same bytes precede
    it, they are returned first and the error is raised by the next ``feed`` or ``finish``,
    so the client receives everything Bedrock sent before failing.
    """

    __slots__ = ("_base", "_error", "_frames", "_role_sent", "_tool_index", "usage")

    def __init__(self, model: str) -> None:
        self._frames = EventStreamDecoder()
        self._base: JSONDict = {
            "id": new_completion_id(),
            "created": int(time.time()),
            "model": model,
        }
        self._role_sent = False
        self._error: UpstreamError | None = None
        # contentBlockIndex of each tool use -> its OpenAI tool_calls index.
        self._tool_index: dict[int, int] = {}
        self.usage: Usage | None = None

    def feed(self, data: bytes) -> list[StreamChunk]:
        if self._error is not None:
            raise self._error
        try:
            messages = self._frames.feed(data)
        except EventStreamError as exc:
            raise _malformed(str(exc)) from exc
        out: list[StreamChunk] = []
        for message in messages:
            try:
                chunk = self._handle(message)
            except UpstreamError as exc:
                if not out:
                    raise
                self._error = exc
                break
            if chunk is not None:
                out.append(chunk)
        return out

    def finish(self) -> list[StreamChunk]:
        if self._error is not None:
            raise self._error
        if self._frames.pending():
            raise _malformed("the stream ended inside a message")
        return []

    def _chunk(self, delta: JSONDict, finish: str | None = None) -> StreamChunk:
        if not self._role_sent:
            delta = {"role": "assistant", **delta}
            self._role_sent = True
        return StreamChunk.chat(self._base, delta, finish)

    def _handle(self, message: EventMessage) -> StreamChunk | None:
        kind = message.header(":message-type")
        if kind == "exception":
            raise stream_exception(message.header(":exception-type") or "", message.payload)
        if kind == "error":
            raise bedrock_error(
                500,
                message.header(":error-code"),
                message.header(":error-message") or "stream error",
            )
        if kind not in (None, "event"):
            return None
        try:
            body = orjson.loads(message.payload) if message.payload else {}
        except orjson.JSONDecodeError as exc:
            raise _malformed("an event payload is not JSON") from exc
        if not isinstance(body, dict):
            return None
        event = message.header(":event-type")
        if event == "contentBlockDelta":
            return self._delta(body)
        if event == "messageStart":
            return self._chunk({"content": ""})
        if event == "contentBlockStart":
            return self._block_start(body)
        if event == "messageStop":
            return self._chunk({}, finish_reason(body.get("stopReason")))
        if event == "metadata":
            self.usage = usage_from_bedrock(body.get("usage"))
        return None

    def _tool_slot(self, block_index: Any) -> tuple[int, bool]:
        """(OpenAI tool_calls index, whether it is new) for a content block."""
        key = block_index if isinstance(block_index, int) else -1
        if key in self._tool_index:
            return self._tool_index[key], False
        slot = self._tool_index[key] = len(self._tool_index)
        return slot, True

    def _block_start(self, body: JSONDict) -> StreamChunk | None:
        start = body.get("start")
        tool = start.get("toolUse") if isinstance(start, dict) else None
        if not isinstance(tool, dict):
            return None
        slot, _ = self._tool_slot(body.get("contentBlockIndex"))
        call = {
            "index": slot,
            "id": tool.get("toolUseId"),
            "type": "function",
            "function": {"name": tool.get("name"), "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _delta(self, body: JSONDict) -> StreamChunk | None:
        delta = body.get("delta")
        if not isinstance(delta, dict):
            return None
        text = delta.get("text")
        if isinstance(text, str):
            return self._chunk({"content": text})
        tool = delta.get("toolUse")
        if isinstance(tool, dict):
            slot, new = self._tool_slot(body.get("contentBlockIndex"))
            call: JSONDict = {"index": slot, "function": {"arguments": tool.get("input") or ""}}
            if new:  # a delta without its contentBlockStart: still open a call
                call["type"] = "function"
            return self._chunk({"tool_calls": [call]})
        reasoning = delta.get("reasoningContent")
        if isinstance(reasoning, dict) and isinstance(reasoning.get("text"), str):
            return self._chunk({"reasoning_content": reasoning["text"]})
        return None
