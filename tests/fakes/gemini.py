"""A fake Gemini API, Vertex AI and Google OAuth token endpoint over loopback HTTP, speaking the
documented wire formats:
https://ai.google.dev/api/generate-content (``/v1beta/models/{model}:{method}``, x-goog-api-key)
https://cloud.google.com/vertex-ai/generative-ai/docs/model-reference/inference
(``/v1/projects/{p}/locations/{l}/publishers/google/models/{model}:{method}``, bearer token)
https://developers.google.com/identity/protocols/oauth2/service-account (``POST /token``: the
JWT bearer grant; the assertion's RS256 signature is checked against the test's public key).

The upstream model name selects the behaviour:
- anything else: echo the last user text; with tools declared, call the first tool (with a thought
  signature) unless the last turn already answers a call, then report the tool result
- ``error-<status>`` (400, 401, 403, 404, 429, 500, 503, 504), ``error-key`` (invalid API key),
  ``error-context`` (prompt too long): Google error bodies with the real statuses
- ``blocked``: the prompt is blocked (promptFeedback.blockReason)
- ``stream-error``: one chunk, then an error event
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import secrets
import struct
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.leaks import pem_secret, secret

SIGNATURE = "ZmFrZS10aG91Z2h0LXNpZ25hdHVyZQ=="
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_GEMINI_PATH = re.compile(r"^/(?:v1|v1beta)/models/(?P<model>[^/:]+):(?P<method>\w+)$")
_VERTEX_PATH = re.compile(
    r"^/(?:v1|v1beta1)/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+):(?P<method>\w+)$"
)
ERRORS: dict[str, tuple[int, str, str]] = {
    "400": (400, "INVALID_ARGUMENT", "Invalid value at 'generation_config.temperature'."),
    "401": (401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
    "403": (403, "PERMISSION_DENIED", "Permission denied on resource project fake-project."),
    "404": (
        404,
        "NOT_FOUND",
        "Publisher model was not found or your project does not have access.",
    ),
    "429": (429, "RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota)."),
    "500": (500, "INTERNAL", "An internal error has occurred."),
    "503": (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
    "504": (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    "context": (
        400,
        "INVALID_ARGUMENT",
        "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
    ),
}


def generate_service_account(
    token_uri: str, project_id: str = "fake-project"
) -> tuple[dict[str, Any], rsa.RSAPublicKey]:
    """A fresh service-account key file (as a dict) and the public key that verifies it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    info = {
        "type": "service_account",
        "project_id": project_id,
        "private_key_id": secrets.token_hex(8),
        "private_key": pem_secret(pem),
        "client_email": f"gateway-test@{project_id}.iam.gserviceaccount.com",
        "client_id": "100000000000000000001",
        "token_uri": token_uri,
    }
    return info, key.public_key()


def google_error(status: int, rpc_status: str, message: str, **extra: Any) -> web.Response:
    error: dict[str, Any] = {"code": status, "message": message, "status": rpc_status, **extra}
    return web.json_response({"error": error}, status=status)


def _b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4)) if text else 0


def _vector(text: str, dims: int) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest() * (dims // 32 + 1)
    return [round(b / 255 - 0.5, 4) for b in digest[:dims]]


def _headers(request: web.Request) -> dict[str, str]:
    return {name.lower(): value for name, value in request.headers.items()}


@dataclass
class Recorded:
    """One request as received; header names are lower-cased."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeGemini:
    api_key: str = "gemini-test-key"
    # Verifies service-account assertions at /token; tokens it issues open Vertex AI.
    public_key: rsa.RSAPublicKey | None = None
    client_email: str | None = None
    static_tokens: set[str] = field(default_factory=set)
    issued_tokens: set[str] = field(default_factory=set)
    requests: list[Recorded] = field(default_factory=list)
    token_requests: list[Recorded] = field(default_factory=list)
    tool_args: dict[str, Any] = field(default_factory=lambda: {"location": "Paris"})

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        if request.path == "/token":
            return self._token(request, raw)
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = None
        self.requests.append(Recorded(request.method, request.path_qs, _headers(request), body))
        match = _GEMINI_PATH.match(request.path)
        vertex = _VERTEX_PATH.match(request.path)
        if match is not None:
            if request.headers.get("x-goog-api-key") != self.api_key:
                return self._bad_key()
        elif vertex is not None:
            match = vertex
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth.startswith("Bearer ") else ""
            if token not in self.issued_tokens and token not in self.static_tokens:
                return google_error(401, "UNAUTHENTICATED", ERRORS["401"][2])
        else:
            return google_error(404, "NOT_FOUND", f"Path {request.path} was not found.")
        if not isinstance(body, dict):
            return google_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        model, method = match.group("model"), match.group("method")
        if model.startswith("error-"):
            return self._error(model[len("error-") :])
        if method == "batchEmbedContents":
            return self._batch_embed(body)
        if method == "predict":
            return self._predict(body)
        if method == "generateContent":
            return web.json_response(self._generate(body, model))
        if method == "streamGenerateContent" and request.query.get("alt") == "sse":
            return await self._stream(request, body, model)
        return google_error(400, "INVALID_ARGUMENT", f"Unknown method {method}.")

    # --- errors --------------------------------------------------------------------------
    def _bad_key(self) -> web.Response:
        return google_error(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"},
                }
            ],
        )

    def _error(self, name: str) -> web.Response:
        if name == "key":
            return self._bad_key()
        status, rpc_status, message = ERRORS.get(name, ERRORS["500"])
        extra: dict[str, Any] = {}
        if status == 429:
            extra["details"] = [
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}
            ]
        return google_error(status, rpc_status, message, **extra)

    # --- OAuth -----------------------------------------------------------------------------
    def _token(self, request: web.Request, raw: bytes) -> web.Response:
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        self.token_requests.append(Recorded(request.method, request.path, _headers(request), form))
        refused = web.json_response(
            {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}, status=400
        )
        if form.get("grant_type") != JWT_BEARER or self.public_key is None:
            return web.json_response(
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type."},
                status=400,
            )
        try:
            header_b64, claims_b64, signature_b64 = form.get("assertion", "").split(".")
            header = orjson.loads(_b64url(header_b64))
            claims = orjson.loads(_b64url(claims_b64))
            self.public_key.verify(
                _b64url(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature, orjson.JSONDecodeError):
            return refused
        now = time.time()
        valid = (
            header.get("alg") == "RS256"
            and (self.client_email is None or claims.get("iss") == self.client_email)
            and str(claims.get("aud", "")).endswith("/token")
            and SCOPE in str(claims.get("scope", "")).split()
            and claims.get("iat", now + 1000) <= now + 60
            and now < claims.get("exp", 0) <= claims["iat"] + 3600
        )
        if not valid:
            return web.json_response(
                {"error": "invalid_grant", "error_description": "Invalid JWT claims."}, status=400
            )
        token = secret("ya29.fake-" + secrets.token_hex(12))
        self.issued_tokens.add(token)
        return web.json_response(
            {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        )

    # --- generation ------------------------------------------------------------------------
    @staticmethod
    def _texts(contents: list[dict[str, Any]]) -> str:
        return " ".join(
            p["text"]
            for c in contents
            for p in c.get("parts", [])
            if isinstance(p.get("text"), str)
        )

    def _answer(self, body: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
        """(parts, finishReason) for a request."""
        contents = body.get("contents") or []
        last = contents[-1] if contents else {}
        responses = [
            p["functionResponse"] for p in last.get("parts", []) if "functionResponse" in p
        ]
        declarations = [
            d for tool in body.get("tools") or [] for d in tool.get("functionDeclarations", [])
        ]
        if responses:
            text = "Tool result: " + orjson.dumps([r["response"] for r in responses]).decode()
            return [{"text": text}], "STOP"
        if (
            declarations
            and body.get("toolConfig", {}).get("functionCallingConfig", {}).get("mode") != "NONE"
        ):
            call = {"name": declarations[0]["name"], "args": self.tool_args}
            return [{"functionCall": call, "thoughtSignature": SIGNATURE}], "STOP"
        last_user = next((c for c in reversed(contents) if c.get("role") == "user"), {})
        return [{"text": self._texts([last_user])}], "STOP"

    def _usage(self, body: dict[str, Any], parts: list[dict[str, Any]]) -> dict[str, int]:
        prompt = _tokens(self._texts(body.get("contents") or []))
        completion = sum(_tokens(p.get("text", "")) or 5 for p in parts)
        return {
            "promptTokenCount": prompt,
            "candidatesTokenCount": completion,
            "totalTokenCount": prompt + completion,
        }

    def _generate(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        if model == "blocked":
            return {
                "promptFeedback": {"blockReason": "SAFETY"},
                "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
                "modelVersion": model,
            }
        parts, reason = self._answer(body)
        return {
            "candidates": [
                {"content": {"parts": parts, "role": "model"}, "finishReason": reason, "index": 0}
            ],
            "usageMetadata": self._usage(body, parts),
            "modelVersion": model,
            "responseId": "fake-" + secrets.token_hex(6),
        }

    async def _stream(
        self, request: web.Request, body: dict[str, Any], model: str
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await response.prepare(request)
        parts, reason = self._answer(body)
        if len(parts) == 1 and "text" in parts[0]:
            words = parts[0]["text"].split(" ")
            pieces = [{"text": w if i == 0 else " " + w} for i, w in enumerate(words)]
        else:
            pieces = parts
        usage = self._usage(body, parts)
        rid = "fake-" + secrets.token_hex(6)
        for n, piece in enumerate(pieces):
            candidate: dict[str, Any] = {"content": {"parts": [piece], "role": "model"}, "index": 0}
            if n == len(pieces) - 1 and model != "stream-error":
                candidate["finishReason"] = reason
            event = {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": model,
                "responseId": rid,
            }
            await response.write(b"data: " + orjson.dumps(event) + b"\r\n\r\n")
            if model == "stream-error":
                err = {"error": {"code": 503, "message": ERRORS["503"][2], "status": "UNAVAILABLE"}}
                await response.write(b"data: " + orjson.dumps(err) + b"\r\n\r\n")
                break
        await response.write_eof()
        return response

    # --- embeddings ------------------------------------------------------------------------
    def _batch_embed(self, body: dict[str, Any]) -> web.Response:
        out = []
        for item in body.get("requests") or []:
            text = self._texts([item.get("content") or {}])
            out.append({"values": _vector(text, int(item.get("outputDimensionality") or 8))})
        return web.json_response({"embeddings": out})

    def _predict(self, body: dict[str, Any]) -> web.Response:
        dims = int((body.get("parameters") or {}).get("outputDimensionality") or 8)
        predictions = [
            {
                "embeddings": {
                    "values": _vector(i["content"], dims),
                    "statistics": {"truncated": False, "token_count": _tokens(i["content"])},
                }
            }
            for i in body.get("instances") or []
        ]
        return web.json_response({"predictions": predictions})


def make_app(**options: Any) -> tuple[web.Application, FakeGemini]:
    fake = FakeGemini(**options)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    return app, fake


def float32(values: list[float]) -> bytes:
    """The little-endian float32 bytes OpenAI's base64 embeddings encode."""
    return struct.pack(f"<{len(values)}f", *values)
