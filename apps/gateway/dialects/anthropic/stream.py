"""OpenAI ``chat.completion.chunk`` dicts -> Anthropic Messages SSE events, for Messages-format
clients of the gateway.

The emitted sequence follows https://docs.anthropic.com/en/api/messages-streaming:
``message_start``, then per content block ``content_block_start`` / ``content_block_delta``
(``text_delta``, ``thinking_delta``, ``input_json_delta``) / ``content_block_stop``, then
``message_delta`` (stop_reason, cumulative usage) and ``message_stop``; ``error`` on failure.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from apps.core.errors import GatewayError
from apps.gateway.dialects.anthropic.errors import anthropic_error_body
from apps.providers.schemas import JSONDict, Usage

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason_for(finish_reason: Any) -> str:
    return (
        STOP_REASONS.get(finish_reason, "end_turn")
        if isinstance(finish_reason, str)
        else "end_turn"
    )


def anthropic_usage(usage: Usage | None) -> JSONDict:
    """Anthropic usage: ``input_tokens`` excludes tokens read from or written to the cache."""
    usage = usage or Usage()
    uncached = usage.prompt_tokens - usage.cached_tokens - usage.cache_creation_tokens
    return {
        "input_tokens": max(uncached, 0),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": usage.cache_creation_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def sse_event(name: str, data: JSONDict) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class OpenAIToAnthropicStream:
    """Stateful, one per response. ``feed`` takes one OpenAI chunk dict and returns the SSE
    bytes it produces (possibly empty); ``finish`` closes the message; ``error_event`` renders
    a failure. A new content block starts whenever the kind of delta changes (thinking, text,
    or a different tool call), closing the previous one."""

    def __init__(self, model: str, message_id: str | None = None) -> None:
        self.model = model
        self.message_id = message_id or f"msg_{uuid.uuid4().hex[:24]}"
        self._started = False
        self._finished = False
        self._next_index = 0
        self._open: tuple[str, int] | None = None  # (kind key, block index)
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool call index -> block index
        self._finish_reason: str | None = None
        self._usage: Usage | None = None

    def feed(self, chunk: JSONDict) -> bytes:
        out = [self._start()]
        usage = Usage.from_openai(chunk.get("usage"))
        if usage is not None:
            raw = chunk.get("usage")
            if isinstance(raw, dict) and isinstance(raw.get("cache_creation_input_tokens"), int):
                usage.cache_creation_tokens = raw["cache_creation_input_tokens"]
            self._usage = usage
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, dict) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                out.append(self._delta(delta))
            if choice.get("finish_reason"):
                self._finish_reason = str(choice["finish_reason"])
        return b"".join(out)

    def finish(self, usage: Usage | None = None) -> bytes:
        """Close the open block and the message; ``usage`` overrides what chunks carried."""
        if self._finished:
            return b""
        self._finished = True
        out = [self._start(), self._close()]
        delta = {"stop_reason": stop_reason_for(self._finish_reason), "stop_sequence": None}
        out.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": delta,
                    "usage": anthropic_usage(usage or self._usage),
                },
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def error_event(self, err: BaseException) -> bytes:
        """An ``event: error`` carrying the error's status mapped to an Anthropic type."""
        self._finished = True
        if isinstance(err, GatewayError):
            status, message = err.http_status, err.message
        else:
            status, message = 500, str(err)
        return sse_event("error", anthropic_error_body(status, message or "Internal error"))

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: JSONDict = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return sse_event("message_start", {"type": "message_start", "message": message})

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index = self._open[1]
        self._open = None
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": index})

    def _open_block(self, key: str, block: JSONDict) -> tuple[int, bytes]:
        """(block index, bytes) for a block of ``key``, starting it unless already open."""
        if self._open is not None and self._open[0] == key:
            return self._open[1], b""
        closing = self._close()
        index = self._next_index
        self._next_index += 1
        self._open = (key, index)
        start = {"type": "content_block_start", "index": index, "content_block": block}
        return index, closing + sse_event("content_block_start", start)

    def _block_delta(self, index: int, delta: JSONDict) -> bytes:
        return sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _delta(self, delta: JSONDict) -> bytes:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content")
        if isinstance(reasoning, str) and reasoning:
            index, head = self._open_block("thinking", {"type": "thinking", "thinking": ""})
            out += [
                head,
                self._block_delta(index, {"type": "thinking_delta", "thinking": reasoning}),
            ]
        text = delta.get("content")
        if isinstance(text, str) and text:
            index, head = self._open_block("text", {"type": "text", "text": ""})
            out += [head, self._block_delta(index, {"type": "text_delta", "text": text})]
        for call in delta.get("tool_calls") or []:
            if isinstance(call, dict):
                out.append(self._tool_delta(call))
        return b"".join(out)

    def _tool_delta(self, call: JSONDict) -> bytes:
        position = call.get("index", 0)
        raw_function = call.get("function")
        function: JSONDict = raw_function if isinstance(raw_function, dict) else {}
        out: list[bytes] = []
        if position not in self._tool_blocks:
            block = {
                "type": "tool_use",
                "id": str(call.get("id") or f"toolu_{uuid.uuid4().hex[:24]}"),
                "name": str(function.get("name") or ""),
                "input": {},
            }
            index, head = self._open_block(f"tool:{position}", block)
            self._tool_blocks[position] = index
            out.append(head)
        index = self._tool_blocks[position]
        fragment = function.get("arguments")
        if isinstance(fragment, str) and fragment:
            delta = {"type": "input_json_delta", "partial_json": fragment}
            out.append(self._block_delta(index, delta))
        return b"".join(out)
