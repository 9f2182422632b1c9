"""Vertex AI: URLs, bearer auth and the service-account token exchange."""

from __future__ import annotations

import base64
import urllib.parse
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from apps.core.errors import InvalidRequest, UpstreamError
from apps.providers.gemini import VertexAIProvider
from apps.providers.schemas import CanonicalRequest, Op, Target

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "providers" / "gemini"
provider = VertexAIProvider()
CHAT = CanonicalRequest(
    op=Op.CHAT, body={"model": "g", "messages": [{"role": "user", "content": "Hi"}]}
)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def service_account(rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {
        "type": "service_account",
        "project_id": "sa-project",
        "private_key_id": "key-1",
        "private_key": pem,
        "client_email": "gateway@sa-project.iam.gserviceaccount.com",
        "client_id": "1234",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def target(**kwargs: Any) -> Target:
    params = {"vertex_project": "my-project", "vertex_location": "us-central1"}
    params.update(kwargs.pop("params", {}))
    defaults: dict[str, Any] = {
        "deployment_id": "d",
        "provider": "vertex_ai",
        "model": "gemini-2.5-pro",
        "access_token": "ya29.token",
        "params": params,
    }
    return Target(**{**defaults, **kwargs})


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TestUrls:
    def test_regional_url_and_bearer(self) -> None:
        req = provider.build_request(CHAT, target())
        assert req.url == (
            "https://us-central1-aiplatform.googleapis.com/v1/projects/my-project/locations/"
            "us-central1/publishers/google/models/gemini-2.5-pro:generateContent"
        )
        assert req.headers["authorization"] == "Bearer ya29.token"
        assert "x-goog-api-key" not in req.headers
        assert orjson.loads(req.body or b"")["contents"][0]["role"] == "user"

    def test_global_location(self) -> None:
        req = provider.build_request(CHAT, target(params={"vertex_location": "global"}))
        assert req.url.startswith(
            "https://aiplatform.googleapis.com/v1/projects/my-project/locations/global/"
        )

    def test_default_location(self) -> None:
        req = provider.build_request(CHAT, target(params={"vertex_location": None}))
        assert "https://us-central1-aiplatform.googleapis.com/" in req.url

    def test_stream_url(self) -> None:
        stream = CanonicalRequest(op=Op.CHAT, body=CHAT.body, stream=True)
        req = provider.build_request(stream, target(params={"vertex_location": "europe-west4"}))
        assert req.url == (
            "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-project/locations/"
            "europe-west4/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        )

    def test_api_base_overrides_host(self) -> None:
        req = provider.build_request(CHAT, target(api_base="http://127.0.0.1:8123/"))
        assert req.url == (
            "http://127.0.0.1:8123/v1/projects/my-project/locations/us-central1/"
            "publishers/google/models/gemini-2.5-pro:generateContent"
        )

    def test_api_base_with_version(self) -> None:
        req = provider.build_request(CHAT, target(api_base="http://h/v1beta1"))
        assert req.url.startswith("http://h/v1beta1/projects/my-project/")

    def test_numeric_model_is_an_endpoint(self) -> None:
        req = provider.build_request(CHAT, target(model="4965075652664360960"))
        assert req.url.endswith(
            "/locations/us-central1/endpoints/4965075652664360960:generateContent"
        )

    def test_project_from_credentials(self, service_account: dict[str, Any]) -> None:
        t = target(params={"vertex_project": None, "vertex_credentials": service_account})
        assert "/projects/sa-project/" in provider.build_request(CHAT, t).url

    def test_missing_project(self) -> None:
        with pytest.raises(InvalidRequest, match="vertex_project"):
            provider.build_request(CHAT, target(params={"vertex_project": None}))

    def test_api_key_is_a_ready_token(self) -> None:
        req = provider.build_request(CHAT, target(api_key="ya29.static", access_token=None))
        assert req.headers["authorization"] == "Bearer ya29.static"

    def test_no_credentials(self) -> None:
        with pytest.raises(InvalidRequest, match="vertex_credentials"):
            provider.build_request(CHAT, target(access_token=None))

    def test_parse_response(self) -> None:
        body = (FIXTURES / "generate_content_text.json").read_bytes()
        result = provider.parse_response(CHAT, target(), body)
        assert result.data["choices"][0]["message"]["content"].startswith("Hello!")
        assert result.usage is not None and result.usage.prompt_tokens == 12


class TestTokenAuth:
    def test_protocol(self) -> None:
        assert provider.token_auth is provider

    def test_no_token_needed_with_api_key(self, service_account: dict[str, Any]) -> None:
        t = target(api_key="ya29.static", params={"vertex_credentials": service_account})
        assert provider.token_cache_key(t) is None

    def test_no_token_without_credentials(self) -> None:
        assert provider.token_cache_key(target()) is None

    def test_cache_key_is_stable_and_secret_free(self, service_account: dict[str, Any]) -> None:
        as_dict = target(params={"vertex_credentials": service_account})
        as_json = target(params={"vertex_credentials": orjson.dumps(service_account).decode()})
        key = provider.token_cache_key(as_dict)
        assert key and key == provider.token_cache_key(as_json)
        assert "PRIVATE" not in key and service_account["client_email"] not in key
        other = {**service_account, "client_email": "other@x.iam.gserviceaccount.com"}
        assert provider.token_cache_key(target(params={"vertex_credentials": other})) != key

    def test_jwt_bearer_request(
        self, service_account: dict[str, Any], rsa_key: rsa.RSAPrivateKey
    ) -> None:
        t = target(params={"vertex_credentials": orjson.dumps(service_account).decode()})
        req = provider.build_token_request(t, now=1_700_000_000.5)
        assert req.method == "POST"
        assert req.url == "https://oauth2.googleapis.com/token"
        assert req.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(urllib.parse.parse_qsl((req.body or b"").decode()))
        assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
        header_b64, claims_b64, signature_b64 = form["assertion"].split(".")
        assert orjson.loads(b64url_decode(header_b64)) == {
            "alg": "RS256",
            "typ": "JWT",
            "kid": "key-1",
        }
        assert orjson.loads(b64url_decode(claims_b64)) == {
            "iss": "gateway@sa-project.iam.gserviceaccount.com",
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "aud": "https://oauth2.googleapis.com/token",
            "iat": 1_700_000_000,
            "exp": 1_700_003_600,
        }
        rsa_key.public_key().verify(
            b64url_decode(signature_b64),
            f"{header_b64}.{claims_b64}".encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
        with pytest.raises(InvalidSignature):
            rsa_key.public_key().verify(
                b64url_decode(signature_b64), b"tampered", padding.PKCS1v15(), hashes.SHA256()
            )

    def test_authorized_user_refresh(self) -> None:
        creds = {
            "type": "authorized_user",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": "1//refresh",
        }
        req = provider.build_token_request(target(params={"vertex_credentials": creds}), 0.0)
        assert req.url == "https://oauth2.googleapis.com/token"
        form = dict(urllib.parse.parse_qsl((req.body or b"").decode()))
        assert form == {
            "grant_type": "refresh_token",
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": "1//refresh",
        }

    def test_parse_token_response(self) -> None:
        body = (FIXTURES / "token_response.json").read_bytes()
        assert provider.parse_token_response(body, 1000.0) == (
            "ya29.c.b0Aaekm1K-test-token",
            4599.0,
        )

    def test_parse_token_response_without_token(self) -> None:
        with pytest.raises(UpstreamError):
            provider.parse_token_response(b'{"token_type": "Bearer"}', 0.0)

    @pytest.mark.parametrize(
        ("credentials", "message"),
        [
            ("/etc/keys/sa.json", "JSON itself"),
            ('{"type": "service_account", "client_email": "x"}', "private_key"),
            ({"type": "external_account"}, "not supported"),
            ([1, 2], "JSON object"),
        ],
    )
    def test_bad_credentials(self, credentials: Any, message: str) -> None:
        with pytest.raises(InvalidRequest, match=message) as info:
            provider.token_cache_key(target(params={"vertex_credentials": credentials}))
        assert info.value.code == "deployment_misconfigured"

    def test_bad_private_key(self, service_account: dict[str, Any]) -> None:
        creds = {**service_account, "private_key": "-----BEGIN PRIVATE KEY-----\nnope\n"}
        with pytest.raises(InvalidRequest, match="PEM"):
            provider.build_token_request(target(params={"vertex_credentials": creds}), 0.0)

    def test_build_token_request_without_credentials(self) -> None:
        with pytest.raises(InvalidRequest):
            provider.build_token_request(target(), 0.0)
