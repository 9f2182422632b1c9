"""Azure OpenAI requests: URLs, API versions, credentials, payloads, Entra ID tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import orjson
import pytest

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.azure import AzureOpenAIProvider
from apps.providers.azure.provider import DEFAULT_API_VERSION, stream_usage_supported
from apps.providers.registry import get_provider, split_model
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "azure"
BASE = "https://my-resource.openai.azure.com"
PROVIDER = AzureOpenAIProvider()
CHAT = {"model": "gpt", "messages": [{"role": "user", "content": "hi"}]}
CREDS = {"tenant_id": "tenant-1", "client_id": "app-1", "client_secret": "s3cr3t+/="}


def target(**kwargs: Any) -> Target:
    kwargs.setdefault("api_base", BASE)
    kwargs.setdefault("api_key", "azure-key-123")
    return Target(deployment_id="d1", provider="azure", model="my-gpt4o", **kwargs)


def request(op: Op = Op.CHAT, body: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    return CanonicalRequest(op=op, body=dict(body or CHAT), **kwargs)


def build(req: CanonicalRequest | None = None, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
    upstream = PROVIDER.build_request(req or request(), target(**kwargs))
    return upstream, orjson.loads(upstream.body)


class TestRegistry:
    def test_names(self) -> None:
        assert isinstance(get_provider("azure"), AzureOpenAIProvider)
        assert get_provider("azure_text").name == "azure_text"
        assert split_model("azure/my-gpt4o") == ("azure", "my-gpt4o")
        assert split_model("azure_text/instruct") == ("azure_text", "instruct")

    def test_token_auth_capability(self) -> None:
        assert PROVIDER.token_auth is PROVIDER


class TestUrl:
    @pytest.mark.parametrize(
        ("op", "path"),
        [
            (Op.CHAT, "/chat/completions"),
            (Op.COMPLETIONS, "/completions"),
            (Op.EMBEDDINGS, "/embeddings"),
        ],
    )
    def test_dated_default_version(self, op: Op, path: str) -> None:
        body = {"model": "m", "prompt": "x", "input": "x", **CHAT}
        upstream, _ = build(request(op, body))
        assert upstream.method == "POST"
        assert upstream.url == (
            f"{BASE}/openai/deployments/my-gpt4o{path}?api-version={DEFAULT_API_VERSION}"
        )
        assert DEFAULT_API_VERSION == "2024-10-21"

    def test_deployment_api_version(self) -> None:
        upstream, _ = build(api_version="2025-04-01-preview")
        assert upstream.url.endswith("/chat/completions?api-version=2025-04-01-preview")

    @pytest.mark.parametrize(
        "api_base",
        [BASE, BASE + "/", BASE + "/openai", BASE + "/openai/"],
    )
    def test_base_forms(self, api_base: str) -> None:
        upstream, _ = build(api_base=api_base)
        assert upstream.url.startswith(f"{BASE}/openai/deployments/my-gpt4o/chat/completions?")

    def test_deployment_name_is_quoted(self) -> None:
        t = Target(deployment_id="d", provider="azure", model="a b:c", api_base=BASE, api_key="k")
        url = PROVIDER.build_request(request(), t).url
        assert "/openai/deployments/a%20b:c/chat/completions" in url

    @pytest.mark.parametrize("name", ["../../x", "a/b", "..", "a?x=1", "a#b", "a\r\nb", ""])
    def test_a_deployment_name_with_path_characters_is_refused(self, name: str) -> None:
        t = Target(deployment_id="d", provider="azure", model=name, api_base=BASE, api_key="k")
        with pytest.raises(InvalidRequest) as info:
            PROVIDER.build_request(request(), t)
        assert info.value.http_status == 400 and info.value.code == "invalid_model_name"

    def test_a_query_in_api_base_is_kept_after_the_path(self) -> None:
        t = Target(
            deployment_id="d",
            provider="azure",
            model="dep",
            api_base=BASE + "/?route=eu",
            api_key="k",
        )
        url = PROVIDER.build_request(request(), t).url
        assert url.startswith(f"{BASE}/openai/deployments/dep/chat/completions?route=eu&")
        assert url.endswith("api-version=" + DEFAULT_API_VERSION)

    def test_v1_api(self) -> None:
        upstream, body = build(api_version="v1")
        assert upstream.url == f"{BASE}/openai/v1/chat/completions"
        assert body["model"] == "my-gpt4o"

    @pytest.mark.parametrize("version", ["preview", "latest"])
    def test_v1_preview(self, version: str) -> None:
        upstream, _ = build(api_version=version)
        assert upstream.url == f"{BASE}/openai/v1/chat/completions?api-version={version}"

    def test_v1_base_url(self) -> None:
        upstream, _ = build(api_base=BASE + "/openai/v1/")
        assert upstream.url == f"{BASE}/openai/v1/chat/completions"

    def test_missing_api_base(self) -> None:
        with pytest.raises(InvalidRequest) as info:
            PROVIDER.build_request(
                request(), Target(deployment_id="d", provider="azure", model="m")
            )
        assert info.value.code == "deployment_misconfigured"

    def test_moderations_unsupported(self) -> None:
        with pytest.raises(InvalidRequest) as info:
            build(request(Op.MODERATIONS, {"model": "m", "input": "x"}))
        assert info.value.code == "unsupported_operation"


class TestHeaders:
    def test_api_key(self) -> None:
        upstream, _ = build()
        assert upstream.headers["api-key"] == "azure-key-123"
        assert "authorization" not in upstream.headers
        assert upstream.headers["content-type"] == "application/json"

    def test_static_entra_token(self) -> None:
        upstream, _ = build(params={"azure_ad_token": "entra-static"})
        assert upstream.headers["authorization"] == "Bearer entra-static"
        assert "api-key" not in upstream.headers

    def test_fetched_token(self) -> None:
        upstream, _ = build(access_token="entra-fetched", params=CREDS, api_key=None)
        assert upstream.headers["authorization"] == "Bearer entra-fetched"
        assert "api-key" not in upstream.headers

    def test_deployment_headers_merge(self) -> None:
        upstream, _ = build(headers={"x-ms-client-request-id": "abc"})
        assert upstream.headers["x-ms-client-request-id"] == "abc"
        assert upstream.headers["api-key"] == "azure-key-123"

    def test_no_credentials(self) -> None:
        upstream, _ = build(api_key=None)
        assert "api-key" not in upstream.headers and "authorization" not in upstream.headers


class TestPayload:
    def test_model_is_deployment_and_gateway_fields_dropped(self) -> None:
        body = {
            **CHAT,
            "temperature": 0.2,
            "metadata": {"a": 1},
            "mock_response": "x",
            "fallbacks": ["y"],
            "num_retries": 2,
            "caching": True,
            "tags": ["t"],
            "litellm_metadata": {},
            "guardrails": [],
            "drop_params": True,
            "extra_body": {"data_sources": [{"type": "azure_search"}]},
        }
        _, payload = build(request(body=body))
        assert payload == {
            "model": "my-gpt4o",
            "messages": CHAT["messages"],
            "temperature": 0.2,
            "data_sources": [{"type": "azure_search"}],
        }

    def test_request_not_mutated(self) -> None:
        req = request(body={**CHAT, "metadata": {"a": 1}})
        build(req)
        assert req.body == {**CHAT, "metadata": {"a": 1}}

    def test_additional_drop_params(self) -> None:
        _, payload = build(request(body={**CHAT, "seed": 3}), additional_drop_params=("seed",))
        assert "seed" not in payload

    def test_stream_usage_requested(self) -> None:
        req = request(body={**CHAT, "stream": True}, stream=True)
        _, payload = build(req)
        assert payload["stream_options"] == {"include_usage": True}

    def test_stream_usage_not_sent_to_old_versions(self) -> None:
        body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
        _, payload = build(request(body=body, stream=True), api_version="2024-06-01")
        assert "stream_options" not in payload
        assert payload["stream"] is True

    @pytest.mark.parametrize(
        ("version", "supported"),
        [
            ("2023-05-15", False),
            ("2024-02-01", False),
            ("2024-06-01", False),
            ("2024-08-01-preview", False),
            ("2024-09-01-preview", True),
            ("2024-10-21", True),
            ("2025-04-01-preview", True),
            ("v1", True),
            ("preview", True),
            ("latest", True),
            ("something-new", True),
        ],
    )
    def test_stream_usage_by_version(self, version: str, supported: bool) -> None:
        assert stream_usage_supported(version) is supported


class TestEntraToken:
    def test_cache_key_only_for_client_credentials(self) -> None:
        assert PROVIDER.token_cache_key(target()) is None
        assert PROVIDER.token_cache_key(target(params={"tenant_id": "t"})) is None
        key = PROVIDER.token_cache_key(target(params=CREDS))
        assert key is not None and "tenant-1" in key and "app-1" in key
        assert CREDS["client_secret"] not in key

    def test_static_token_wins(self) -> None:
        params = {**CREDS, "azure_ad_token": "static"}
        assert PROVIDER.token_cache_key(target(params=params)) is None

    def test_cache_key_changes_with_secret(self) -> None:
        other = {**CREDS, "client_secret": "another"}
        assert PROVIDER.token_cache_key(target(params=CREDS)) != PROVIDER.token_cache_key(
            target(params=other)
        )

    def test_token_request(self) -> None:
        req = PROVIDER.build_token_request(target(params=CREDS), 1000.0)
        assert req.method == "POST"
        assert req.url == "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
        assert req.headers["content-type"] == "application/x-www-form-urlencoded"
        assert req.body is not None
        form = parse_qs(req.body.decode(), strict_parsing=True)
        assert form == {
            "grant_type": ["client_credentials"],
            "client_id": ["app-1"],
            "client_secret": ["s3cr3t+/="],
            "scope": ["https://cognitiveservices.azure.com/.default"],
        }

    def test_token_request_overrides(self) -> None:
        params = {
            **CREDS,
            "azure_scope": "https://ai.azure.com/.default",
            "azure_authority_host": "https://login.microsoftonline.us/",
        }
        req = PROVIDER.build_token_request(target(params=params), 0.0)
        assert req.url == "https://login.microsoftonline.us/tenant-1/oauth2/v2.0/token"
        assert req.body is not None
        assert parse_qs(req.body.decode())["scope"] == ["https://ai.azure.com/.default"]

    def test_token_request_without_credentials(self) -> None:
        with pytest.raises(UpstreamError):
            PROVIDER.build_token_request(target(), 0.0)

    def test_parse_token(self) -> None:
        data = orjson.loads((FIXTURES / "token_response.json").read_bytes())
        body = orjson.dumps(data["success"]["body"])
        token, expires = PROVIDER.parse_token_response(body, 1000.0)
        assert token == data["success"]["body"]["access_token"]
        assert expires == 1000.0 + 3599

    def test_parse_token_string_lifetime(self) -> None:
        token, expires = PROVIDER.parse_token_response(
            b'{"access_token": "t", "expires_in": "120"}', 10.0
        )
        assert (token, expires) == ("t", 130.0)

    @pytest.mark.parametrize("body", [b"", b"not json", b"[]", b'{"token_type": "Bearer"}'])
    def test_parse_token_without_token(self, body: bytes) -> None:
        with pytest.raises(UpstreamError) as info:
            PROVIDER.parse_token_response(body, 0.0)
        assert info.value.http_status == 502
