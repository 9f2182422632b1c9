"""Pass-through for clients that speak the Bedrock runtime API themselves (boto3's
``bedrock-runtime`` client on the gateway's ``/bedrock`` route).

The client's body goes upstream unchanged, to the deployment's endpoint and model, signed anew
with the deployment's credentials (SigV4 or a Bedrock API key). Usage is read from:

- Converse: the answer's ``usage``;
- ConverseStream: the ``metadata`` event;
- InvokeModel: the ``X-Amzn-Bedrock-Input-Token-Count`` / ``-Output-Token-Count`` headers, or
  the model's own body (Anthropic's ``usage``, ``amazon-bedrock-invocationMetrics``);
- InvokeModelWithResponseStream: each ``chunk`` event's base64 ``bytes``, whose model-specific
  JSON carries ``amazon-bedrock-invocationMetrics`` on the last chunk (or Anthropic's
  ``message_start`` / ``message_delta`` usage).

https://docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html,
API_runtime_ConverseStream.html, API_runtime_InvokeModel.html,
API_runtime_InvokeModelWithResponseStream.html
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Mapping
from typing import Any

import orjson

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers import urls
from apps.providers.anthropic.response import usage_from_anthropic
from apps.providers.bedrock.auth import auth_headers, aws_environment, resolve_auth
from apps.providers.bedrock.errors import bedrock_error, stream_exception
from apps.providers.bedrock.eventstream import EventMessage, EventStreamDecoder, EventStreamError
from apps.providers.bedrock.provider import BedrockProvider, model_id, model_path
from apps.providers.bedrock.response import usage_from_bedrock
from apps.providers.schemas import Target, UpstreamRequest, Usage

ACTIONS = frozenset({"converse", "converse-stream", "invoke", "invoke-with-response-stream"})
STREAM_ACTIONS = frozenset({"converse-stream", "invoke-with-response-stream"})
# Client headers that mean something to the runtime API and are forwarded (then signed).
FORWARDED_HEADERS = (
    "content-type",
    "accept",
    "x-amzn-bedrock-accept",
    "x-amzn-bedrock-trace",
    "x-amzn-bedrock-guardrailidentifier",
    "x-amzn-bedrock-guardrailversion",
    "x-amzn-bedrock-performanceconfig-latency",
)
_INPUT_HEADER = "x-amzn-bedrock-input-token-count"
_OUTPUT_HEADER = "x-amzn-bedrock-output-token-count"
_METRICS = "amazon-bedrock-invocationMetrics"


def check_action(action: str) -> None:
    if action not in ACTIONS:
        raise InvalidRequest(
            f"Bedrock action '{action}' is not served by the pass-through route.",
            code="not_found",
        )


def native_request(
    target: Target,
    action: str,
    body: bytes,
    client_headers: Mapping[str, str],
    *,
    now: dt.datetime | None = None,
) -> UpstreamRequest:
    """The client's body for the deployment's model, signed with the deployment's
    credentials (the signature covers the exact URL, headers and body sent)."""
    check_action(action)
    provider = BedrockProvider()
    model = model_id(target)
    auth = resolve_auth(target, model, aws_environment())
    url = urls.join(provider.endpoint(target, auth.region), f"/model/{model_path(model)}/{action}")
    headers = {name: client_headers[name] for name in FORWARDED_HEADERS if name in client_headers}
    headers.setdefault("content-type", "application/json")
    headers.update(target.headers)
    return UpstreamRequest(
        method="POST",
        url=url,
        headers=auth_headers(auth, "POST", url, headers, body, now),
        body=body,
    )


def _int(value: Any) -> int:
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _metrics_usage(data: Any) -> Usage | None:
    metrics = data.get(_METRICS) if isinstance(data, dict) else None
    if not isinstance(metrics, dict):
        return None
    return Usage(
        prompt_tokens=_int(metrics.get("inputTokenCount")),
        completion_tokens=_int(metrics.get("outputTokenCount")),
    )


def native_usage(action: str, body: bytes, headers: Mapping[str, str]) -> Usage:
    """Usage of a complete Converse or InvokeModel answer; zeros when it carries none."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if _INPUT_HEADER in lowered or _OUTPUT_HEADER in lowered:
        return Usage(
            prompt_tokens=_int(lowered.get(_INPUT_HEADER)),
            completion_tokens=_int(lowered.get(_OUTPUT_HEADER)),
        )
    try:
        data: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return Usage()
    if not isinstance(data, dict):
        return Usage()
    if action == "converse":
        return usage_from_bedrock(data.get("usage")) or Usage()
    return _metrics_usage(data) or usage_from_anthropic(data.get("usage")) or Usage()


class NativeStreamScanner:
    """Watches a relayed event stream (ConverseStream or InvokeModelWithResponseStream):
    bytes pass unchanged; usage and an exception event are recorded."""

    def __init__(self, action: str) -> None:
        self._action = action
        self._frames = EventStreamDecoder()
        self._anthropic: dict[str, Any] | None = None
        self.usage: Usage | None = None
        self.error: UpstreamError | None = None

    def feed(self, data: bytes) -> bytes:
        if self.error is None or self.error.code != "malformed_stream":
            try:
                for message in self._frames.feed(data):
                    self._handle(message)
            except EventStreamError as exc:
                self.error = UpstreamError(
                    f"bedrock returned a malformed event stream: {exc}",
                    upstream_status=200,
                    code="malformed_stream",
                )
        return data

    def finish(self) -> bytes:
        return b""

    def _handle(self, message: EventMessage) -> None:
        kind = message.header(":message-type")
        if kind == "exception":
            self.error = stream_exception(message.header(":exception-type") or "", message.payload)
            return
        if kind == "error":
            self.error = bedrock_error(
                500, message.header(":error-code"), message.header(":error-message") or ""
            )
            return
        event = message.header(":event-type")
        if event not in ("metadata", "chunk"):
            return
        try:
            body = orjson.loads(message.payload) if message.payload else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(body, dict):
            return
        if event == "metadata":
            self.usage = usage_from_bedrock(body.get("usage")) or self.usage
            return
        raw = body.get("bytes")
        if not isinstance(raw, str):
            return
        try:
            chunk = orjson.loads(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError):
            return
        if not isinstance(chunk, dict):
            return
        self.usage = _metrics_usage(chunk) or self._anthropic_usage(chunk) or self.usage

    def _anthropic_usage(self, chunk: dict[str, Any]) -> Usage | None:
        """Anthropic models stream Messages events inside the chunks: ``message_start``
        carries the input usage, ``message_delta`` the cumulative output."""
        kind = chunk.get("type")
        usage: Any = None
        if kind == "message_start" and isinstance(chunk.get("message"), dict):
            usage = chunk["message"].get("usage")
        elif kind == "message_delta":
            usage = chunk.get("usage")
        if not isinstance(usage, dict):
            return None
        merged = dict(self._anthropic or {})
        merged.update({k: v for k, v in usage.items() if v is not None})
        self._anthropic = merged
        return usage_from_anthropic(merged)
