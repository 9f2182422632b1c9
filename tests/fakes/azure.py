"""A fake Azure OpenAI resource (and Entra ID token endpoint) on loopback, for end-to-end tests.

Routes, as Azure serves them:
- ``POST /openai/deployments/{deployment}/chat/completions|completions|embeddings`` with the
  required ``api-version`` query (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/
  reference); a request without one answers 404 "Resource not found", like unknown paths;
- ``POST /openai/v1/chat/completions|completions|embeddings``, deployment in the body's
  ``model`` (https://learn.microsoft.com/en-us/azure/ai-foundry/openai/latest);
- ``POST /{tenant}/oauth2/v2.0/token``, the Entra ID client credentials grant
  (https://learn.microsoft.com/en-us/entra/identity-platform/v2-oauth2-client-creds-grant-flow).

Callers authenticate with the ``api-key`` header or ``Authorization: Bearer`` with a token this
fake issued; anything else is Azure's 401. Every request is recorded in ``FakeAzure.requests``.

The deployment name selects the behaviour:
- ``content-filter``: the prompt is refused (400 ``content_filter`` with ``innererror``,
  https://learn.microsoft.com/en-us/azure/ai-foundry/openai/concepts/content-filter);
- ``filtered-output``: 200 with ``finish_reason: content_filter``;
- ``error-<status>``: Azure's error body for that status (429 adds ``retry-after``);
- ``stream-error``: a stream cut by an error event;
- ``tool-caller``: a call to the first tool offered, then an answer quoting the tool result;
  any deployment does so when ``tool_choice`` forces a tool (``required`` or a named function);
- anything else echoes the last user message (chat), the prompt (completions) or returns
  vectors (embeddings).
Chat streams open with Azure's prompt-filter chunk (empty ``choices``) and carry
``content_filter_results`` on each choice (https://learn.microsoft.com/en-us/azure/ai-foundry/
openai/concepts/content-streaming).
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from tests.leaks import secret

API_KEY = secret("azure-fake-key-0123456789")
TENANT = "fake-tenant"
CLIENT_ID = "fake-client"
CLIENT_SECRET = secret("fake-client-secret")

SAFE = {"filtered": False, "severity": "safe"}
CHOICE_FILTERS = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTERS = [
    {
        "prompt_index": 0,
        "content_filter_results": {
            **CHOICE_FILTERS,
            "jailbreak": {"filtered": False, "detected": False},
        },
    }
]
ERRORS: dict[int, tuple[str, str]] = {
    400: ("BadRequest", "Invalid value for 'temperature'."),
    401: (
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
        "provide a valid key for an active subscription and use a correct regional API "
        "endpoint for your resource.",
    ),
    403: ("PermissionDenied", "Principal does not have access to API/Operation."),
    404: (
        "DeploymentNotFound",
        "The API deployment for this resource does not exist. If you created the deployment "
        "within the last 5 minutes, please wait a moment and try again.",
    ),
    429: (
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current OpenAI S0 pricing tier. "
        "Please retry after 6 seconds.",
    ),
    500: ("InternalServerError", "The server had an error while processing your request."),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any


@dataclass
class FakeAzure:
    api_key: str = API_KEY
    requests: list[Recorded] = field(default_factory=list)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)

    def reset(self) -> None:
        self.requests.clear()
        self.token_requests.clear()

    # Entra ID

    async def token(self, request: web.Request) -> web.Response:
        form = {k: v[0] for k, v in parse_qs((await request.read()).decode()).items()}
        self.token_requests.append({"tenant": request.match_info["tenant"], **form})
        if (
            request.match_info["tenant"] != TENANT
            or form.get("client_id") != CLIENT_ID
            or form.get("client_secret") != CLIENT_SECRET
        ):
            return web.json_response(
                {
                    "error": "invalid_client",
                    "error_description": "AADSTS7000215: Invalid client secret provided.",
                    "error_codes": [7000215],
                },
                status=401,
            )
        if form.get("grant_type") != "client_credentials" or not form.get("scope"):
            return web.json_response({"error": "invalid_request"}, status=400)
        token = secret("entra-" + secrets.token_hex(8))
        self.tokens.add(token)
        return web.json_response(
            {
                "token_type": "Bearer",
                "expires_in": 3599,
                "ext_expires_in": 3599,
                "access_token": token,
            }
        )

    # Inference

    def _authorized(self, request: web.Request) -> bool:
        key = request.headers.get("api-key")
        if key is not None:
            return key == self.api_key
        auth = request.headers.get("Authorization", "")
        return auth.startswith("Bearer ") and auth[len("Bearer ") :] in self.tokens

    async def deployments(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        if "api-version" not in request.query:
            return _azure_error(404, "404", "Resource not found")
        return await self._serve(request, request.match_info["deployment"], body)

    async def v1(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model = body.get("model") if isinstance(body, dict) else None
        return await self._serve(request, str(model or ""), body)

    async def not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return _azure_error(404, "404", "Resource not found")

    async def _record(self, request: web.Request) -> Any:
        raw = await request.read()
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(
            Recorded(request.method, request.path, dict(request.query), dict(request.headers), body)
        )
        return body

    async def _serve(self, request: web.Request, deployment: str, body: Any) -> web.StreamResponse:
        if not self._authorized(request):
            code, message = ERRORS[401]
            return _azure_error(401, code, message)
        if not isinstance(body, dict):
            return _azure_error(400, "BadRequest", "We could not parse the JSON body.")
        op = request.match_info["op"]
        if deployment.startswith("error-"):
            status = int(deployment.split("-", 1)[1])
            code, message = ERRORS.get(status, ("Error", f"HTTP {status}"))
            headers = {"retry-after": "6", "retry-after-ms": "6000"} if status == 429 else None
            return _azure_error(status, code, message, headers)
        if deployment == "content-filter":
            return _content_filter()
        if op == "embeddings":
            return _embeddings(deployment, body)
        if op == "completions":
            return await self._completions(request, deployment, body)
        if body.get("stream"):
            return await _chat_stream(request, deployment, body)
        return web.json_response(_chat(deployment, body))

    async def _completions(
        self, request: web.Request, deployment: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        usage = _usage(text, text)
        base = {
            "id": "cmpl-fakeazure",
            "object": "text_completion",
            "created": int(time.time()),
            "model": deployment,
        }
        choice = {"index": 0, "logprobs": None, "content_filter_results": CHOICE_FILTERS}
        if not body.get("stream"):
            return web.json_response(
                {
                    **base,
                    "prompt_filter_results": PROMPT_FILTERS,
                    "choices": [{**choice, "text": text, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
        chunks: list[dict[str, Any]] = [_prompt_filter_chunk()]
        for n, word in enumerate(text.split(" ")):
            piece = word if n == 0 else " " + word
            chunks.append({**base, "choices": [{**choice, "text": piece, "finish_reason": None}]})
        chunks.append({**base, "choices": [{**choice, "text": "", "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        return await _sse(request, chunks)


def _azure_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


def _content_filter() -> web.Response:
    body = {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's "
            "content management policy. Please modify your prompt and retry. To learn more "
            "about our content filtering policies please read our documentation: "
            "https://go.microsoft.com/fwlink/?linkid=2198766",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {
                "code": "ResponsibleAIPolicyViolation",
                "content_filter_result": {
                    **CHOICE_FILTERS,
                    "violence": {"filtered": True, "severity": "high"},
                    "jailbreak": {"filtered": False, "detected": False},
                },
            },
        }
    }
    return web.json_response(body, status=400)


def _last_user_text(body: dict[str, Any]) -> str:
    for message in reversed(body.get("messages") or []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if p.get("type") == "text")
            return str(content)
    return ""


def _usage(prompt: str, completion: str) -> dict[str, int]:
    p, c = len(prompt.split()) + 3, len(completion.split())
    return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def _reply(deployment: str, body: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """(assistant message, finish_reason) for a chat request."""
    messages = body.get("messages") or []
    tool_result = next((m for m in reversed(messages) if m.get("role") == "tool"), None)
    choice = body.get("tool_choice")
    forced = choice not in (None, "auto", "none")
    if (deployment == "tool-caller" or forced) and body.get("tools") and tool_result is None:
        named = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
        name = named or body["tools"][0]["function"]["name"]
        call = {
            "id": "call_azure_1",
            "type": "function",
            "function": {"name": name, "arguments": '{"location": "Paris"}'},
        }
        return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
    if deployment == "filtered-output":
        return {"role": "assistant", "content": None}, "content_filter"
    text = f"The tool said: {tool_result['content']}" if tool_result else _last_user_text(body)
    return {"role": "assistant", "content": text}, "stop"


def _chat(deployment: str, body: dict[str, Any]) -> dict[str, Any]:
    message, finish = _reply(deployment, body)
    filters = dict(CHOICE_FILTERS)
    if finish == "content_filter":
        filters["violence"] = {"filtered": True, "severity": "medium"}
    return {
        "id": "chatcmpl-fakeazure",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fakeazure",
        "prompt_filter_results": PROMPT_FILTERS,
        "choices": [
            {
                "index": 0,
                "finish_reason": finish,
                "logprobs": None,
                "message": {**message, "refusal": None},
                "content_filter_results": filters,
            }
        ],
        "usage": _usage(_last_user_text(body), message.get("content") or ""),
    }


def _prompt_filter_chunk() -> dict[str, Any]:
    return {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": PROMPT_FILTERS,
    }


async def _chat_stream(
    request: web.Request, deployment: str, body: dict[str, Any]
) -> web.StreamResponse:
    message, finish = _reply(deployment, body)
    include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    base: dict[str, Any] = {
        "id": "chatcmpl-fakeazure",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": "gpt-4o-mini-2024-07-18",
        "system_fingerprint": "fp_fakeazure",
    }
    if include_usage:
        base["usage"] = None

    def chunk(delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
        return {**base, "choices": [{**choice, "content_filter_results": CHOICE_FILTERS}]}

    chunks = [_prompt_filter_chunk(), chunk({"role": "assistant", "content": ""})]
    if message.get("tool_calls"):
        call = message["tool_calls"][0]
        head = {
            "index": 0,
            "id": call["id"],
            "type": "function",
            "function": {"name": call["function"]["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [head]}))
        arguments = call["function"]["arguments"]
        for part in (arguments[:10], arguments[10:]):
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
    else:
        words = (message.get("content") or "").split(" ")
        chunks += [chunk({"content": w if n == 0 else " " + w}) for n, w in enumerate(words)]
    chunks.append(chunk({}, finish))
    if include_usage:
        usage = _usage(_last_user_text(body), message.get("content") or "")
        chunks.append({**base, "choices": [], "usage": usage})
    if deployment == "stream-error":
        error = {
            "error": {
                "message": "The server had an error while processing your request.",
                "type": "server_error",
                "param": None,
                "code": None,
            }
        }
        chunks = [*chunks[:3], error]
    return await _sse(request, chunks, done=deployment != "stream-error")


async def _sse(
    request: web.Request, chunks: list[dict[str, Any]], done: bool = True
) -> web.StreamResponse:
    response = web.StreamResponse(headers={"content-type": "text/event-stream"})
    await response.prepare(request)
    for item in chunks:
        await response.write(b"data: " + orjson.dumps(item) + b"\n\n")
    if done:
        await response.write(b"data: [DONE]\n\n")
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


def _embeddings(deployment: str, body: dict[str, Any]) -> web.Response:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    tokens = sum(len(str(i).split()) for i in items)
    return web.json_response(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": n, "embedding": [0.1 * (n + 1), -0.2, 0.3]}
                for n, _ in enumerate(items)
            ],
            "model": "text-embedding-3-small",
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def make_app(fake: FakeAzure | None = None) -> tuple[web.Application, FakeAzure]:
    fake = fake or FakeAzure()
    app = web.Application()
    ops = "{op:chat/completions|completions|embeddings}"
    app.router.add_post("/openai/deployments/{deployment}/" + ops, fake.deployments)
    app.router.add_post("/openai/v1/" + ops, fake.v1)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", fake.token)
    app.router.add_route("*", "/{tail:.*}", fake.not_found)
    return app, fake
