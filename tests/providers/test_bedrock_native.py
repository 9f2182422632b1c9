"""Bedrock pass-through translation: the re-signed request and usage of Converse and
InvokeModel answers and event streams."""

from __future__ import annotations

import base64
import datetime as dt

import orjson
import pytest

from apps.core.errors import InvalidRequest
from apps.providers.bedrock import native
from apps.providers.schemas import Target
from tests.fakes.bedrock import encode_message, event_frame, exception_frame

TARGET = Target(
    deployment_id="d",
    provider="bedrock",
    model="anthropic.claude-3-5-sonnet-20240620-v1:0",
    api_base="https://bedrock.example",
    params={
        "aws_region_name": "us-east-1",
        "aws_access_key_id": "AKID",
        "aws_secret_access_key": "s",
    },
)


def test_request_is_signed_with_the_deployment_credentials() -> None:
    body = b'{"messages": []}'
    req = native.native_request(
        TARGET,
        "converse",
        body,
        {"content-type": "application/json", "authorization": "Bearer sk-client", "x-other": "1"},
        now=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert (
        req.url
        == "https://bedrock.example/model/anthropic.claude-3-5-sonnet-20240620-v1:0/converse"
    )
    assert req.body == body
    assert req.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKID/20260101/us-east-1/bedrock/"
    )
    assert "x-other" not in req.headers


def test_unknown_action_is_refused() -> None:
    with pytest.raises(InvalidRequest):
        native.check_action("delete-model")


def test_converse_usage() -> None:
    body = orjson.dumps({"usage": {"inputTokens": 9, "outputTokens": 4, "cacheReadInputTokens": 2}})
    usage = native.native_usage("converse", body, {})
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (11, 4, 2)


def test_invoke_usage_from_headers_then_body() -> None:
    headers = {"X-Amzn-Bedrock-Input-Token-Count": "12", "X-Amzn-Bedrock-Output-Token-Count": "3"}
    assert native.native_usage("invoke", b"{}", headers).total_tokens == 15
    anthropic_body = orjson.dumps({"usage": {"input_tokens": 5, "output_tokens": 6}})
    assert native.native_usage("invoke", anthropic_body, {}).total_tokens == 11


def _chunk(data: dict[str, object]) -> bytes:
    payload = {"bytes": base64.b64encode(orjson.dumps(data)).decode()}
    return encode_message(
        {":event-type": "chunk", ":content-type": "application/json", ":message-type": "event"},
        orjson.dumps(payload),
    )


def test_converse_stream_usage_from_the_metadata_event() -> None:
    data = event_frame("contentBlockDelta", {"delta": {"text": "hi"}}) + event_frame(
        "metadata", {"usage": {"inputTokens": 3, "outputTokens": 2}}
    )
    scanner = native.NativeStreamScanner("converse-stream")
    out = b"".join(scanner.feed(data[i : i + 5]) for i in range(0, len(data), 5))
    assert out == data
    assert scanner.usage is not None and scanner.usage.total_tokens == 5


def test_invoke_stream_usage_from_invocation_metrics_or_anthropic_events() -> None:
    scanner = native.NativeStreamScanner("invoke-with-response-stream")
    scanner.feed(_chunk({"type": "message_start", "message": {"usage": {"input_tokens": 8}}}))
    scanner.feed(_chunk({"type": "message_delta", "usage": {"output_tokens": 4}}))
    assert scanner.usage is not None and (
        scanner.usage.prompt_tokens,
        scanner.usage.completion_tokens,
    ) == (8, 4)
    scanner.feed(
        _chunk({"amazon-bedrock-invocationMetrics": {"inputTokenCount": 8, "outputTokenCount": 5}})
    )
    assert scanner.usage.completion_tokens == 5


def test_stream_exception_is_recorded() -> None:
    scanner = native.NativeStreamScanner("converse-stream")
    scanner.feed(exception_frame("throttlingException", "slow down"))
    assert scanner.error is not None and scanner.error.http_status == 429
    broken = native.NativeStreamScanner("converse-stream")
    broken.feed(b"\x00\x00\x00\x10" + b"\x00" * 12)
    assert broken.error is not None and broken.error.code == "malformed_stream"
