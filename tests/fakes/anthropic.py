"""A fake Anthropic Messages API over loopback HTTP, speaking the documented wire format:
https://docs.anthropic.com/en/api/messages, .../messages-streaming and .../errors.

``POST /v1/messages`` checks the key (``x-api-key`` as documented, or the ``Authorization:
Bearer`` form the official SDK sends; 401 authentication_error otherwise) and
``anthropic-version`` (400), then the upstream model name selects the behaviour:
- anything else: a text reply echoing the last user text (``Result: ...`` after a tool result)
- ``tool-caller``: calls the first tool with ``tool_input`` (streamed as input_json_delta); any
  model does so when ``tool_choice`` forces a tool (``any``, or ``tool``: the named one)
- ``thinker``: a thinking block (with signature) before the text
- ``error-<status>``: the documented error body for that status (429 adds retry-after);
  ``error-context``: 400 "prompt is too long"
- ``stream-error``: a stream that fails with ``event: error`` (overloaded_error) mid-message
Usage counts words; a request holding any ``cache_control`` reports cache reads and writes.
``POST /v1/messages/count_tokens`` (https://docs.anthropic.com/en/api/messages-count-tokens)
answers ``{"input_tokens": N}`` and refuses generation-only fields.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

from tests.leaks import secret

API_KEY = secret("sk-ant-fake-upstream-key")
COUNT_PATH = "/v1/messages/count_tokens"
COUNT_FIELDS = frozenset({"model", "messages", "system", "tools", "tool_choice", "thinking"})
ERRORS = {
    400: ("invalid_request_error", "max_tokens: Field required"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}


@dataclass
class Recorded:
    """One request as received; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAnthropic:
    api_key: str = API_KEY
    tool_input: dict[str, Any] = field(default_factory=lambda: {"city": "Paris"})
    requests: list[Recorded] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(Recorded(request.method, request.path_qs, headers, body))
        if request.method != "POST" or request.path not in ("/v1/messages", COUNT_PATH):
            return error_response(404, "not_found_error", "Not found")
        if self.api_key not in (
            request.headers.get("x-api-key"),
            request.headers.get("authorization", "").removeprefix("Bearer "),
        ):
            return error_response(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return error_response(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        if not isinstance(body, dict):
            return error_response(400, "invalid_request_error", "Invalid JSON body")
        if request.path == COUNT_PATH:
            extra = sorted(set(body) - COUNT_FIELDS)
            if extra:
                return error_response(
                    400, "invalid_request_error", f"{extra[0]}: Extra inputs are not permitted"
                )
            return web.json_response({"input_tokens": _words(body) + 3})
        if not isinstance(body.get("max_tokens"), int):
            return error_response(400, "invalid_request_error", "max_tokens: Field required")
        model = str(body.get("model", ""))
        if model == "error-context":
            return error_response(
                400, "invalid_request_error", "prompt is too long: 208310 tokens > 200000 maximum"
            )
        if model.startswith("error-"):
            status = int(model.split("-", 1)[1])
            kind, message = ERRORS.get(status, ("api_error", f"HTTP {status}"))
            headers = {"retry-after": "7"} if status == 429 else {}
            return error_response(status, kind, message, headers)
        message = self.message(body)
        if body.get("stream"):
            return await self.stream(request, message, fail=model == "stream-error")
        return web.json_response(message, headers={"request-id": "req_fake"})

    def message(self, body: dict[str, Any]) -> dict[str, Any]:
        """The complete Message the request gets (the stream replays it as events)."""
        model = str(body["model"])
        text, tool_result = _last_user_turn(body)
        content: list[dict[str, Any]] = []
        stop_reason = "end_turn"
        if model == "thinker":
            content.append(
                {"type": "thinking", "thinking": "Thinking about it.", "signature": "c2lnbmF0dXJl"}
            )
        tools = body.get("tools") or []
        choice = body.get("tool_choice") or {}
        forced = choice.get("type") in ("any", "tool")
        if (model == "tool-caller" or forced) and tools and tool_result is None:
            content.append({"type": "text", "text": "Let me check."})
            content.append(
                {
                    "type": "tool_use",
                    "id": "toolu_01FakeCall",
                    "name": choice.get("name") or tools[0]["name"],
                    "input": self.tool_input,
                }
            )
            stop_reason = "tool_use"
        else:
            reply = f"Result: {tool_result}" if tool_result is not None else text
            content.append({"type": "text", "text": reply})
        output = sum(len(str(b.get("text") or b.get("input") or "").split()) for b in content)
        cached = b"cache_control" in orjson.dumps(body)
        usage = {
            "input_tokens": _words(body) + 3,
            "output_tokens": output,
            "cache_creation_input_tokens": 5 if cached else 0,
            "cache_read_input_tokens": 10 if cached else 0,
        }
        return {
            "id": "msg_01FakeMessage",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    async def stream(
        self, request: web.Request, message: dict[str, Any], *, fail: bool
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"content-type": "text/event-stream", "cache-control": "no-cache"}
        )
        await response.prepare(request)
        usage = message["usage"]
        start = {**message, "content": [], "stop_reason": None}
        start["usage"] = {**usage, "output_tokens": 1}
        events: list[tuple[str, dict[str, Any]]] = [
            ("message_start", {"type": "message_start", "message": start}),
            ("ping", {"type": "ping"}),
        ]
        for index, block in enumerate(message["content"]):
            events += _block_events(index, block)
            if fail:
                events.append(
                    (
                        "error",
                        {
                            "type": "error",
                            "error": {"type": "overloaded_error", "message": "Overloaded"},
                        },
                    )
                )
                break
        else:
            events.append(
                (
                    "message_delta",
                    {
                        "type": "message_delta",
                        "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                        "usage": {"output_tokens": usage["output_tokens"]},
                    },
                )
            )
            events.append(("message_stop", {"type": "message_stop"}))
        with contextlib.suppress(ConnectionResetError):
            for name, data in events:
                await response.write(encode_event(name, data))
            await response.write_eof()
        return response


def encode_event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def _block_events(index: int, block: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind = block["type"]
    events: list[tuple[str, dict[str, Any]]] = []

    def delta(payload: dict[str, Any]) -> None:
        events.append(
            (
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": payload},
            )
        )

    if kind == "text":
        start: dict[str, Any] = {"type": "text", "text": ""}
    elif kind == "thinking":
        start = {"type": "thinking", "thinking": ""}
    else:
        start = {**block, "input": {}}
    events.append(
        (
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
    )
    if kind == "text":
        words = block["text"].split(" ")
        for n, word in enumerate(words):
            delta({"type": "text_delta", "text": word if n == 0 else " " + word})
    elif kind == "thinking":
        delta({"type": "thinking_delta", "thinking": block["thinking"]})
        delta({"type": "signature_delta", "signature": block["signature"]})
    else:
        arguments = orjson.dumps(block["input"]).decode()
        delta({"type": "input_json_delta", "partial_json": ""})
        for n in range(0, len(arguments), 5):
            delta({"type": "input_json_delta", "partial_json": arguments[n : n + 5]})
    events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
    return events


def _words(body: dict[str, Any]) -> int:
    text = orjson.dumps(body.get("system") or "") + orjson.dumps(body.get("messages") or [])
    return len(text.split())


def _last_user_turn(body: dict[str, Any]) -> tuple[str, str | None]:
    """(last user text, text of its tool result or None)."""
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content, None
        texts: list[str] = []
        result: str | None = None
        for block in content or []:
            if block.get("type") == "text":
                texts.append(block.get("text", ""))
            elif block.get("type") == "tool_result":
                inner = block.get("content")
                if isinstance(inner, list):
                    inner = " ".join(b.get("text", "") for b in inner if isinstance(b, dict))
                result = str(inner or "")
        return " ".join(texts), result
    return "", None


def error_response(
    status: int, kind: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    payload = {
        "type": "error",
        "error": {"type": kind, "message": message},
        "request_id": "req_fake_error",
    }
    return web.json_response(payload, status=status, headers=headers)


def make_app(fake: FakeAnthropic | None = None) -> tuple[web.Application, FakeAnthropic]:
    fake = fake or FakeAnthropic()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    return app, fake
