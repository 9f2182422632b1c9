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

import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import orjson
from aiohttp import web

from tests.fakes.azure_bodies import (
    CHOICE_FILTERS,
    ERRORS,
    PROMPT_FILTERS,
    azure_error,
    chat,
    chat_stream,
    content_filter,
    embeddings,
    prompt_filter_chunk,
    sse,
    token_usage,
)
from tests.leaks import secret

API_KEY = secret("azure-fake-key-0123456789")
TENANT = "fake-tenant"
CLIENT_ID = "fake-client"
CLIENT_SECRET = secret("fake-client-secret")


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
            return azure_error(404, "404", "Resource not found")
        return await self._serve(request, request.match_info["deployment"], body)

    async def v1(self, request: web.Request) -> web.StreamResponse:
        body = await self._record(request)
        model = body.get("model") if isinstance(body, dict) else None
        return await self._serve(request, str(model or ""), body)

    async def not_found(self, request: web.Request) -> web.Response:
        await self._record(request)
        return azure_error(404, "404", "Resource not found")

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
            return azure_error(401, code, message)
        if not isinstance(body, dict):
            return azure_error(400, "BadRequest", "We could not parse the JSON body.")
        op = request.match_info["op"]
        if deployment.startswith("error-"):
            status = int(deployment.split("-", 1)[1])
            code, message = ERRORS.get(status, ("Error", f"HTTP {status}"))
            headers = {"retry-after": "6", "retry-after-ms": "6000"} if status == 429 else None
            return azure_error(status, code, message, headers)
        if deployment == "content-filter":
            return content_filter()
        if op == "embeddings":
            return embeddings(deployment, body)
        if op == "completions":
            return await self._completions(request, deployment, body)
        if body.get("stream"):
            return await chat_stream(request, deployment, body)
        return web.json_response(chat(deployment, body))

    async def _completions(
        self, request: web.Request, deployment: str, body: dict[str, Any]
    ) -> web.StreamResponse:
        prompt = body.get("prompt")
        text = prompt if isinstance(prompt, str) else " ".join(map(str, prompt or []))
        usage = token_usage(text, text)
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
        chunks: list[dict[str, Any]] = [prompt_filter_chunk()]
        for n, word in enumerate(text.split(" ")):
            piece = word if n == 0 else " " + word
            chunks.append({**base, "choices": [{**choice, "text": piece, "finish_reason": None}]})
        chunks.append({**base, "choices": [{**choice, "text": "", "finish_reason": "stop"}]})
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        return await sse(request, chunks)


def make_app(fake: FakeAzure | None = None) -> tuple[web.Application, FakeAzure]:
    fake = fake or FakeAzure()
    app = web.Application()
    ops = "{op:chat/completions|completions|embeddings}"
    app.router.add_post("/openai/deployments/{deployment}/" + ops, fake.deployments)
    app.router.add_post("/openai/v1/" + ops, fake.v1)
    app.router.add_post("/{tenant}/oauth2/v2.0/token", fake.token)
    app.router.add_route("*", "/{tail:.*}", fake.not_found)
    return app, fake
