"""A fake OpenAI API over loopback HTTP, speaking the documented wire format
(https://platform.openai.com/docs/api-reference/chat/create, .../chat-streaming).

The upstream model name selects the behaviour:
- anything else: echo the last user message (chat), the prompt (completions), vectors (embeddings)
- ``error-<status>``: an OpenAI error body with that status (429 adds retry-after)
- ``slow-<ms>``: answer after a delay; ``drip-<ms>``: stream with that delay between chunks
- ``stream-break``: two chunks, then the connection is cut
- ``stream-error``: one chunk, then an error event
- ``tool-caller``: answers with a call to the first tool; any model does so when ``tool_choice``
  forces a tool (``required`` or a named function)
- a conversation ending in a ``tool`` message gets an answer quoting the tool result
- ``echo-key-error``: a 401 whose message quotes the caller's Authorization header in full
- ``context-exceeded``, ``content-filtered``: OpenAI's 400s for a prompt over the context
  window (``context_length_exceeded``) and one refused by its safety system
- ``garbage``: a 200 whose body is not JSON; ``html-error``: a 502 with an HTML body (a proxy)

Failures on command: ``fail(model, 500, 500)`` makes the next two requests for ``model`` answer
with those statuses (``retry_after`` on 429s), then the model behaves as above again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web

ERRORS = {
    400: ("invalid_request_error", "invalid_value", "Invalid value for 'temperature'."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-upstr*********7890. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: ("permission_error", None, "You are not allowed to use this model."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    503: ("server_error", None, "The engine is currently overloaded."),
}


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float = 0.0


@dataclass
class FakeOpenAI:
    requests: list[Recorded] = field(default_factory=list)
    cancelled_streams: int = 0
    completed_streams: int = 0
    scripted: dict[str, list[int]] = field(default_factory=dict)
    retry_after: str | None = "7"

    def fail(self, model: str, *statuses: int) -> None:
        self.scripted.setdefault(model, []).extend(statuses)

    def reset(self) -> None:
        self.requests.clear()
        self.scripted.clear()
        self.retry_after = "7"
        self.cancelled_streams = 0
        self.completed_streams = 0

    def last_text(self, body: dict[str, Any]) -> str:
        for message in reversed(body.get("messages") or []):
            if message.get("role") == "user":
                content = message.get("content")
                if isinstance(content, list):
                    return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
                return str(content)
        return ""

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(
            Recorded(request.method, request.path_qs, dict(request.headers), body, time.monotonic())
        )
        if not isinstance(body, dict):
            return _error(400, "invalid_request_error", None, "We could not parse the JSON body.")
        model = str(body.get("model", ""))
        queued = self.scripted.get(model)
        if queued:
            model = f"error-{queued.pop(0)}"
        if model == "echo-key-error":
            received = request.headers.get("Authorization", "")
            return _error(401, "invalid_request_error", "invalid_api_key", f"Bad key: {received}")
        if model == "context-exceeded":
            return _error(
                400,
                "invalid_request_error",
                "context_length_exceeded",
                "This model's maximum context length is 16 tokens. However, your messages "
                "resulted in 20 tokens. Please reduce the length of the messages.",
            )
        if model == "content-filtered":
            return _error(
                400,
                "invalid_request_error",
                "content_policy_violation",
                "Your request was rejected as a result of our safety system.",
            )
        if model == "garbage":
            return web.Response(status=200, text="this is not JSON", content_type="text/plain")
        if model == "html-error":
            html = "<html><body><h1>502 Bad Gateway</h1></body></html>"
            return web.Response(status=502, text=html, content_type="text/html")
        if model.startswith("error-"):
            status = int(model.split("-", 1)[1])
            kind, code, message = ERRORS.get(status, ("server_error", None, f"HTTP {status}"))
            headers = (
                {"retry-after": self.retry_after} if status == 429 and self.retry_after else {}
            )
            return _error(status, kind, code, message, headers)
        if model.startswith("slow-"):
            await asyncio.sleep(int(model.split("-", 1)[1]) / 1000)
        path = request.path
        if path.endswith("/embeddings"):
            return self._embeddings(body)
        if path.endswith("/moderations"):
            return web.json_response(
                {
                    "id": "modr-1",
                    "model": model,
                    "results": [{"flagged": False, "categories": {}, "category_scores": {}}],
                }
            )
        if path.endswith("/completions") and not path.endswith("/chat/completions"):
            return await self._completions(request, body)
        if body.get("stream"):
            return await self._stream(request, body)
        return web.json_response(self._chat(body))

    def _usage(self, body: dict[str, Any], text: str) -> dict[str, int]:
        prompt = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", [])) + 3
        completion = len(text.split())
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        model = body["model"]
        messages = body.get("messages") or []
        choice = body.get("tool_choice")
        forced = choice not in (None, "auto", "none")
        answered = bool(messages) and messages[-1].get("role") == "tool"
        last = messages[-1] if answered else {}
        text = f"The tool said: {last.get('content')}" if answered else self.last_text(body)
        message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        finish = "stop"
        if (model == "tool-caller" or forced) and body.get("tools") and not answered:
            named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
            name = named or body["tools"][0]["function"]["name"]
            message = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_abc123",
                        "type": "function",
                        "function": {"name": name, "arguments": '{"city": "Paris"}'},
                    }
                ],
            }
            finish = "tool_calls"
        return {
            "id": "chatcmpl-fake123",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
            "choices": [
                {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
            ],
            "usage": self._usage(body, text),
        }

    async def _stream(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        model = body["model"]
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        delay = int(model.split("-", 1)[1]) / 1000 if model.startswith("drip-") else 0.0
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "chatcmpl-fake123",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fake",
        }
        if include_usage:
            base["usage"] = None
        text = self.last_text(body)
        words = text.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        chunks = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "logprobs": None,
                        "finish_reason": None,
                    }
                ],
            }
        ]
        chunks += [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": {"content": p}, "logprobs": None, "finish_reason": None}
                ],
            }
            for p in pieces
        ]
        chunks.append(
            {
                **base,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
            }
        )
        try:
            for n, chunk in enumerate(chunks):
                if model == "stream-break" and n == 2:
                    assert request.transport is not None
                    request.transport.close()
                    return response
                if model == "stream-error" and n == 2:
                    err = {
                        "error": {
                            "message": "The server had an error while streaming.",
                            "type": "server_error",
                            "param": None,
                            "code": None,
                        }
                    }
                    await response.write(b"data: " + orjson.dumps(err) + b"\n\n")
                    return response
                if delay and n:
                    await asyncio.sleep(delay)
                await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if include_usage:
                usage_chunk = {**base, "choices": [], "usage": self._usage(body, text)}
                await response.write(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
            await response.write(b"data: [DONE]\n\n")
            self.completed_streams += 1
        except (asyncio.CancelledError, ConnectionResetError):
            self.cancelled_streams += 1
            raise
        with contextlib.suppress(ConnectionResetError):
            await response.write_eof()
        return response

    async def _completions(self, request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        usage = {
            "prompt_tokens": len(text.split()),
            "completion_tokens": len(text.split()),
            "total_tokens": 2 * len(text.split()),
        }
        if not body.get("stream"):
            return web.json_response(
                {
                    "id": "cmpl-fake",
                    "object": "text_completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [
                        {"index": 0, "text": text, "logprobs": None, "finish_reason": "stop"}
                    ],
                    "usage": usage,
                }
            )
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        base = {
            "id": "cmpl-fake",
            "object": "text_completion",
            "created": int(time.time()),
            "model": body["model"],
        }
        for word in text.split(" "):
            chunk = {
                **base,
                "choices": [
                    {"index": 0, "text": word + " ", "logprobs": None, "finish_reason": None}
                ],
            }
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
        if (body.get("stream_options") or {}).get("include_usage"):
            await response.write(
                b"data: " + orjson.dumps({**base, "choices": [], "usage": usage}) + b"\n\n"
            )
        await response.write(b"data: [DONE]\n\n")
        return response

    def _embeddings(self, body: dict[str, Any]) -> web.Response:
        inputs = body.get("input")
        items = inputs if isinstance(inputs, list) else [inputs]
        tokens = sum(len(str(i).split()) for i in items)
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": n, "embedding": [0.1 * (n + 1), 0.2, 0.3]}
                    for n, _ in enumerate(items)
                ],
                "model": body.get("model"),
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )


def _error(
    status: int, kind: str, code: str | None, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    payload = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(payload, status=status, headers=headers)


def make_app(fake: FakeOpenAI | None = None) -> tuple[web.Application, FakeOpenAI]:
    fake = fake or FakeOpenAI()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    return app, fake
