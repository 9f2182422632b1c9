"""BedrockProvider.build_request: OpenAI chat -> Converse request, URL, credentials, SigV4."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any
from unittest import mock

import orjson
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from apps.core.errors import InvalidRequest
from apps.providers.bedrock import BedrockProvider
from apps.providers.schemas import CanonicalRequest, Op, Target, UpstreamRequest

MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"
NOW = dt.datetime(2024, 6, 20, 12, 30, 45, tzinfo=dt.UTC)
KEYS = {"aws_access_key_id": "AKIDEXAMPLE", "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG"}
PNG = (  # a 1x1 PNG
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9"
    "awAAAABJRU5ErkJggg=="
)
_AWS_ENV = (
    "AWS_BEARER_TOKEN_BEDROCK",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
)


@pytest.fixture(autouse=True)
def _clean_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _AWS_ENV:
        monkeypatch.delenv(name, raising=False)


def target(model: str = MODEL, **kwargs: Any) -> Target:
    params = kwargs.pop("params", {**KEYS, "aws_region_name": "us-east-1"})
    return Target(deployment_id="d1", provider="bedrock", model=model, params=params, **kwargs)


def chat(**body: Any) -> CanonicalRequest:
    body.setdefault("model", "claude")
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return CanonicalRequest(op=Op.CHAT, body=body, stream=bool(body.get("stream")))


def build(request: CanonicalRequest | None = None, tgt: Target | None = None) -> UpstreamRequest:
    return BedrockProvider().build_request(request or chat(), tgt or target(), now=NOW)


def payload(**body: Any) -> dict[str, Any]:
    drop = body.pop("_drop", None)
    request = chat(**body)
    request.drop_params = drop
    sent = build(request).body
    assert sent is not None
    return dict(orjson.loads(sent))


# ---- URL -----------------------------------------------------------------------------------


def test_url_uses_region_endpoint_and_keeps_colon_literal() -> None:
    req = build()
    assert req.method == "POST"
    assert req.url == f"https://bedrock-runtime.us-east-1.amazonaws.com/model/{MODEL}/converse"


def test_stream_uses_converse_stream() -> None:
    assert build(chat(stream=True)).url.endswith(f"/model/{MODEL}/converse-stream")


def test_converse_route_prefix_is_stripped() -> None:
    assert f"/model/{MODEL}/converse" in build(tgt=target("converse/" + MODEL)).url


def test_arn_model_id_is_escaped_and_gives_the_region() -> None:
    arn = "arn:aws:bedrock:eu-west-3:123456789012:inference-profile/eu.anthropic.claude-v1:0"
    req = build(tgt=target(arn, params=KEYS))
    assert req.url == (
        "https://bedrock-runtime.eu-west-3.amazonaws.com/model/"
        "arn:aws:bedrock:eu-west-3:123456789012:inference-profile%2Feu.anthropic.claude-v1:0"
        "/converse"
    )
    assert "/eu-west-3/bedrock/aws4_request" in req.headers["authorization"]


@pytest.mark.parametrize(
    ("api_base", "params"),
    [
        ("http://127.0.0.1:9000/", {}),
        (None, {"aws_bedrock_runtime_endpoint": "http://127.0.0.1:9000"}),
    ],
)
def test_endpoint_override(api_base: str | None, params: dict[str, str]) -> None:
    req = build(tgt=target(api_base=api_base, params={**KEYS, **params}))
    assert req.url == f"http://127.0.0.1:9000/model/{MODEL}/converse"


def test_region_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "bedrock-runtime.us-west-2." in build(tgt=target(params=KEYS)).url
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    assert "bedrock-runtime.ap-south-1." in build(tgt=target(params=KEYS)).url
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert "bedrock-runtime.eu-central-1." in build(tgt=target(params=KEYS)).url
    tgt = target(params={**KEYS, "aws_region_name": "ca-central-1"})
    assert "bedrock-runtime.ca-central-1." in build(tgt=tgt).url


# ---- credentials and signing ---------------------------------------------------------------


def stock_signature(req: UpstreamRequest, creds: Credentials, region: str) -> str:
    """What unmodified botocore computes for the same request and clock."""
    headers = {
        k: v
        for k, v in req.headers.items()
        if k not in ("authorization", "x-amz-date", "x-amz-security-token")
    }
    aws = AWSRequest(method=req.method, url=req.url, data=req.body, headers=headers)
    naive = NOW.replace(tzinfo=None)
    with mock.patch("botocore.auth.get_current_datetime", return_value=naive):
        SigV4Auth(creds, "bedrock", region).add_auth(aws)
    return str(aws.headers["Authorization"])


def test_sigv4_matches_botocore_over_the_exact_body() -> None:
    req = build()
    assert req.headers["x-amz-date"] == "20240620T123045Z"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["authorization"].startswith(
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240620/us-east-1/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date, Signature="
    )
    creds = Credentials(KEYS["aws_access_key_id"], KEYS["aws_secret_access_key"])
    assert req.headers["authorization"] == stock_signature(req, creds, "us-east-1")
    other = build(chat(messages=[{"role": "user", "content": "Hi!"}]))
    assert other.headers["authorization"] != req.headers["authorization"]


def test_session_token_is_sent_and_signed() -> None:
    params = {**KEYS, "aws_session_token": "FwoGZXIvYXdzEXAMPLE", "aws_region_name": "us-east-1"}
    req = build(tgt=target(params=params))
    assert req.headers["x-amz-security-token"] == "FwoGZXIvYXdzEXAMPLE"
    assert "x-amz-security-token" in req.headers["authorization"]
    creds = Credentials(
        KEYS["aws_access_key_id"], KEYS["aws_secret_access_key"], params["aws_session_token"]
    )
    assert req.headers["authorization"] == stock_signature(req, creds, "us-east-1")


def test_deployment_headers_are_signed() -> None:
    req = build(tgt=target(headers={"X-Amzn-Bedrock-Trace": "ENABLED"}))
    assert req.headers["x-amzn-bedrock-trace"] == "ENABLED"
    assert "x-amzn-bedrock-trace" in req.headers["authorization"]


def test_api_key_is_a_bearer_token_without_sigv4() -> None:
    req = build(tgt=target(api_key="ABSKexample", params={"aws_region_name": "us-east-1"}))
    assert req.headers["authorization"] == "Bearer ABSKexample"
    assert "x-amz-date" not in req.headers


def test_environment_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDFROMENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-from-env")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "token-from-env")
    req = build(tgt=target(params={}))
    assert "Credential=AKIDFROMENV/" in req.headers["authorization"]
    assert req.headers["x-amz-security-token"] == "token-from-env"
    # Deployment keys win over the environment.
    assert "Credential=AKIDEXAMPLE/" in build().headers["authorization"]
    monkeypatch.setenv("AWS_BEARER_TOKEN_BEDROCK", "ABSKenv")
    assert build(tgt=target(params={})).headers["authorization"] == "Bearer ABSKenv"


def test_missing_credentials_is_a_configuration_error() -> None:
    with pytest.raises(InvalidRequest) as info:
        build(tgt=target(params={}))
    assert info.value.code == "deployment_misconfigured"
    with pytest.raises(InvalidRequest):
        build(tgt=target(params={"aws_access_key_id": "AKIDONLY"}))


# ---- body mapping --------------------------------------------------------------------------


def test_messages_system_images_tools_and_merging() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            ],
        },
        {"role": "user", "content": "And the weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"location": "Paris"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "assistant", "content": "Il fait 18°C."},
    ]
    body = payload(messages=messages)
    assert body["system"] == [{"text": "Be brief."}, {"text": "Answer in French."}]
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "What is in this picture?"},
                {"image": {"format": "png", "source": {"bytes": PNG}}},
                {"text": "And the weather?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "toolUse": {
                        "toolUseId": "call_1",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    }
                },
                {"toolUse": {"toolUseId": "call_2", "name": "now", "input": {}}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"toolResult": {"toolUseId": "call_1", "content": [{"text": "18°C"}]}},
                {"toolResult": {"toolUseId": "call_2", "content": [{"text": "noon"}]}},
            ],
        },
        {"role": "assistant", "content": [{"text": "Il fait 18°C."}]},
    ]


@pytest.mark.parametrize(
    ("url", "fmt"),
    [("data:image/jpeg;base64,", "jpeg"), ("data:image/jpg;base64,", "jpeg")],
)
def test_image_formats(url: str, fmt: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url + PNG}}
    body = payload(messages=[{"role": "user", "content": [part]}])
    assert body["messages"][0]["content"][0]["image"]["format"] == fmt


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/cat.png",
        "data:image/tiff;base64," + PNG,
        "data:image/png," + PNG,
        "data:image/png;base64,not base64!",
    ],
)
def test_unusable_images_are_400(url: str) -> None:
    part = {"type": "image_url", "image_url": {"url": url}}
    with pytest.raises(InvalidRequest) as info:
        payload(messages=[{"role": "user", "content": [part]}])
    assert info.value.http_status == 400
    assert "bedrock" in info.value.message


def test_cache_control_becomes_a_cache_point() -> None:
    part = {"type": "text", "text": "Long document", "cache_control": {"type": "ephemeral"}}
    body = payload(
        messages=[{"role": "system", "content": [part]}, {"role": "user", "content": "Q"}]
    )
    assert body["system"] == [{"text": "Long document"}, {"cachePoint": {"type": "default"}}]


def test_inference_config_and_model_specific_fields() -> None:
    body = payload(
        max_tokens=100,
        max_completion_tokens=200,
        temperature=0.2,
        top_p=0.9,
        stop="END",
        top_k=40,
        extra_body={"additionalModelRequestFields": {"anthropic_beta": ["x"]}, "serviceTier": {}},
        guardrailConfig={"guardrailIdentifier": "gr-1", "guardrailVersion": "1"},
    )
    assert body["inferenceConfig"] == {
        "maxTokens": 200,
        "temperature": 0.2,
        "topP": 0.9,
        "stopSequences": ["END"],
    }
    assert body["additionalModelRequestFields"] == {"top_k": 40, "anthropic_beta": ["x"]}
    assert body["guardrailConfig"] == {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}
    assert body["serviceTier"] == {}
    assert payload(stop=["a", "b"], max_tokens=5)["inferenceConfig"] == {
        "maxTokens": 5,
        "stopSequences": ["a", "b"],
    }


TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "now"}},
]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", None),
        ("required", {"any": {}}),
        ({"type": "function", "function": {"name": "now"}}, {"tool": {"name": "now"}}),
    ],
)
def test_tools_and_tool_choice(choice: Any, expected: Any) -> None:
    body = payload(tools=TOOLS, tool_choice=choice)
    assert body["toolConfig"]["tools"] == [
        {
            "toolSpec": {
                "name": "get_weather",
                "description": "Weather for a city",
                "inputSchema": {"json": TOOLS[0]["function"]["parameters"]},
            }
        },
        {"toolSpec": {"name": "now", "inputSchema": {"json": {"type": "object"}}}},
    ]
    assert body["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none() -> None:
    assert "toolConfig" not in payload(tools=TOOLS, tool_choice="none")
    history = [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "tool_calls": [{"id": "c", "type": "function", "function": {"name": "now"}}],
        },
        {"role": "tool", "tool_call_id": "c", "content": "noon"},
    ]
    config = payload(messages=history, tools=TOOLS, tool_choice="none")["toolConfig"]
    assert "toolChoice" not in config and len(config["tools"]) == 2


def test_unsupported_parameter_is_400_unless_dropped() -> None:
    with pytest.raises(InvalidRequest) as info:
        payload(presence_penalty=0.5)
    assert info.value.param == "presence_penalty"
    assert "bedrock" in info.value.message
    assert "presence_penalty" not in payload(presence_penalty=0.5, _drop=True)
    with pytest.raises(InvalidRequest):
        payload(n=2)


def test_gateway_fields_are_never_forwarded_and_body_is_untouched() -> None:
    body = {
        "model": "claude",
        "messages": [{"role": "user", "content": "Hi"}],
        "metadata": {"trace": "1"},
        "mock_response": "x",
        "drop_params": True,
        "fallbacks": ["b"],
        "num_retries": 2,
        "caching": False,
        "tags": ["t"],
        "litellm_metadata": {},
        "guardrails": [],
        "user": "u-1",
        "stream_options": {"include_usage": True},
    }
    original = copy.deepcopy(body)
    sent = build(CanonicalRequest(op=Op.CHAT, body=body)).body
    assert sent is not None
    assert set(orjson.loads(sent)) == {"messages"}
    assert body == original
