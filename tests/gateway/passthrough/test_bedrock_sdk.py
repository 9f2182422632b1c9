"""End to end: boto3's ``bedrock-runtime`` client on ``/bedrock`` -> the gateway -> the fake
Bedrock runtime, which checks the gateway's own SigV4 signature (the deployment's keys)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config

from tests.fakes import bedrock as fake
from tests.gateway.helpers import E2E, usage_rows
from tests.gateway.passthrough.conftest import BEDROCK_MODEL

pytestmark = E2E
TOOLS = {
    "tools": [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Current weather for a city",
                "inputSchema": {
                    "json": {
                        "type": "object",
                        "properties": {"location": {"type": "string"}},
                        "required": ["location"],
                    }
                },
            }
        }
    ]
}


def runtime(gateway: Any, key: str, secret: str | None = None) -> Any:
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=gateway.url + "/bedrock",
        aws_access_key_id=key,
        aws_secret_access_key=secret or key,
        config=Config(retries={"max_attempts": 1}),
    )


def user(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [{"text": text}]}]


def test_converse(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    key = make_key(models=["claude"])
    reply = runtime(gateway_server, key).converse(
        modelId="claude", messages=user("hello bedrock"), requestMetadata={"tag": "boto3"}
    )
    assert "hello bedrock" in reply["output"]["message"]["content"][0]["text"]
    (recorded,) = bedrock_fake.app[fake.REQUESTS]
    assert recorded.path == f"/model/{BEDROCK_MODEL}/converse"
    assert fake.ACCESS_KEY in recorded.headers["Authorization"]
    assert key not in str(recorded.headers)
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 200 and row.call_type == "bedrock:converse"
    assert row.provider == "bedrock" and row.model_group == "claude"
    assert row.prompt_tokens == reply["usage"]["inputTokens"]
    assert row.completion_tokens == reply["usage"]["outputTokens"]
    assert row.metadata == {"tag": "boto3"}
    assert row.cost > 0


def test_converse_stream(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    reply = runtime(gateway_server, make_key()).converse_stream(
        modelId="claude", messages=user("stream me please")
    )
    events = list(reply["stream"])
    text = "".join(
        e["contentBlockDelta"]["delta"].get("text", "") for e in events if "contentBlockDelta" in e
    )
    assert "stream me please" in text
    metadata = next(e["metadata"] for e in events if "metadata" in e)
    (row,) = usage_rows(gateway_server, 1)
    assert row.stream and row.status_code == 200
    assert row.prompt_tokens == metadata["usage"]["inputTokens"]
    assert row.completion_tokens == metadata["usage"]["outputTokens"]


def test_tool_use(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    reply = runtime(gateway_server, make_key()).converse(
        modelId="claude", messages=user("weather in Paris?"), toolConfig=TOOLS
    )
    assert reply["stopReason"] == "tool_use"
    tool = reply["output"]["message"]["content"][-1]["toolUse"]
    assert tool["name"] == "get_weather"


def test_bearer_token(
    gateway_server: Any, gateway_http: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    """boto3 sends AWS_BEARER_TOKEN_BEDROCK only over HTTPS; curl shows the same request."""
    bedrock_group()
    resp = gateway_http.post(
        "/bedrock/model/claude/converse",
        json={"messages": user("hello bearer")},
        headers={"authorization": f"Bearer {make_key()}"},
    )
    assert resp.status_code == 200
    assert resp.json()["usage"]["inputTokens"] > 0


def test_wrong_secret_is_refused(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    client = runtime(gateway_server, make_key(), secret="some-other-secret")
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.converse(modelId="claude", messages=user("hello"))
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert "signature" in caught.value.response["Error"]["Message"].lower()
    assert bedrock_fake.app[fake.REQUESTS] == []


def test_key_without_access_is_refused(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    bedrock_group("other")
    client = runtime(gateway_server, make_key(models=["other"]))
    with pytest.raises(client.exceptions.AccessDeniedException):
        client.converse(modelId="claude", messages=user("hello"))
    assert bedrock_fake.app[fake.REQUESTS] == []
    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 403


def test_upstream_error_is_relayed(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group(model="error-ValidationException")
    client = runtime(gateway_server, make_key())
    with pytest.raises(client.exceptions.ValidationException):
        client.converse(modelId="claude", messages=user("hello"))


def test_invoke_model(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "hello invoke"}],
    }
    reply = runtime(gateway_server, make_key()).invoke_model(
        modelId="claude", body=json.dumps(body)
    )
    answer = json.loads(reply["body"].read())
    assert answer["content"][0]["text"] == "Invoked: hello invoke"
    headers = reply["ResponseMetadata"]["HTTPHeaders"]
    (row,) = usage_rows(gateway_server, 1)
    assert row.call_type == "bedrock:invoke"
    assert row.prompt_tokens == int(headers["x-amzn-bedrock-input-token-count"])
    assert row.completion_tokens == answer["usage"]["output_tokens"]


def test_invoke_model_with_response_stream(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    bedrock_group()
    body = {
        "anthropic_version": "bedrock-2023-05-31",
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "stream invoke"}],
    }
    reply = runtime(gateway_server, make_key()).invoke_model_with_response_stream(
        modelId="claude", body=json.dumps(body)
    )
    events = [json.loads(e["chunk"]["bytes"]) for e in reply["body"]]
    text = "".join(e["delta"].get("text", "") for e in events if e["type"] == "content_block_delta")
    assert text == "Invoked: stream invoke"
    metrics = events[-1]["amazon-bedrock-invocationMetrics"]
    (row,) = usage_rows(gateway_server, 1)
    assert row.stream and row.call_type == "bedrock:invoke-stream"
    assert (row.prompt_tokens, row.completion_tokens) == (
        metrics["inputTokenCount"],
        metrics["outputTokenCount"],
    )


def test_signature_error_does_not_relay_the_session_token(
    gateway_server: Any, bedrock_group: Any, bedrock_fake: Any, make_key: Any
) -> None:
    """Regression: AWS quotes the canonical request (with x-amz-security-token) in a
    signature error, and the relayed body carried the deployment's session token."""
    from apps.core.secrets import encrypt

    bedrock_group(
        secret_params={
            "aws_access_key_id": fake.ACCESS_KEY,
            "aws_secret_access_key": encrypt("not-the-right-secret-key-0123"),
            "aws_session_token": encrypt(fake.SESSION_TOKEN),
        }
    )
    client = runtime(gateway_server, make_key())
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        client.converse(modelId="claude", messages=user("hello"))
    assert "InvalidSignature" in caught.value.response["Error"]["Code"]
    assert fake.SESSION_TOKEN not in str(caught.value.response)
