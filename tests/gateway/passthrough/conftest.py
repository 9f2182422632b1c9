"""Fake Gemini / Vertex AI and Bedrock upstreams on loopback, and model groups routed to them,
for the pass-through routes' end-to-end tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pytest

from tests.fakes import anthropic as fake_anthropic_mod
from tests.fakes import azure as fake_azure_mod
from tests.fakes import bedrock as fake_bedrock_mod
from tests.fakes import gemini as fake_gemini_mod
from tests.fakes.server import BackgroundServer
from tests.leaks import secret

GEMINI_KEY = secret("gemini-upstream-secret-key")
BEDROCK_MODEL = "anthropic.claude-3-5-sonnet-20240620-v1:0"


@dataclass
class GoogleUpstream:
    server: BackgroundServer
    fake: fake_gemini_mod.FakeGemini
    service_account: dict[str, Any]


@pytest.fixture(scope="session")
def _google_server() -> Iterator[GoogleUpstream]:
    app, fake = fake_gemini_mod.make_app(api_key=GEMINI_KEY)
    server = BackgroundServer(app)
    server.start()
    info, public_key = fake_gemini_mod.generate_service_account(server.url + "/token")
    fake.public_key, fake.client_email = public_key, info["client_email"]
    yield GoogleUpstream(server, fake, info)
    server.stop()


@pytest.fixture
def google(_google_server: GoogleUpstream) -> fake_gemini_mod.FakeGemini:
    _google_server.fake.requests.clear()
    _google_server.fake.token_requests.clear()
    return _google_server.fake


@pytest.fixture
def gemini_group(
    _google_server: GoogleUpstream, google: Any, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    def build(group: str = "gem", model: str = "gemini-2.5-flash", **fields: Any) -> Any:
        fields.setdefault("api_base", _google_server.server.url + "/v1beta")
        fields.setdefault("api_key", GEMINI_KEY)
        return make_deployment(group, "gemini", model, **fields)

    return build


@pytest.fixture
def vertex_group(
    _google_server: GoogleUpstream, google: Any, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    from apps.core.secrets import encrypt

    credentials = orjson.dumps(_google_server.service_account).decode()

    def build(group: str = "vtx", model: str = "gemini-2.5-pro", **fields: Any) -> Any:
        fields.setdefault("api_base", _google_server.server.url)
        fields.setdefault(
            "extra_params", {"vertex_project": "fake-project", "vertex_location": "us-east5"}
        )
        fields.setdefault("secret_params", {"vertex_credentials": encrypt(credentials)})
        return make_deployment(group, "vertex_ai", model, **fields)

    return build


@pytest.fixture(scope="session")
def _bedrock_server() -> Iterator[BackgroundServer]:
    server = BackgroundServer(
        fake_bedrock_mod.create_app(session_token=fake_bedrock_mod.SESSION_TOKEN)
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def bedrock_fake(_bedrock_server: BackgroundServer) -> BackgroundServer:
    _bedrock_server.app[fake_bedrock_mod.REQUESTS].clear()
    _bedrock_server.app[fake_bedrock_mod.CONFIG].split_every = 0
    return _bedrock_server


@pytest.fixture
def bedrock_group(
    bedrock_fake: BackgroundServer, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    """Route ``group`` to the fake Bedrock runtime, signing with SigV4 keys."""
    from apps.core.secrets import encrypt

    def build(group: str = "claude", model: str = BEDROCK_MODEL, **fields: Any) -> Any:
        fields.setdefault("api_base", bedrock_fake.url)
        fields.setdefault("extra_params", {"aws_region_name": fake_bedrock_mod.REGION})
        fields.setdefault(
            "secret_params",
            {
                "aws_access_key_id": fake_bedrock_mod.ACCESS_KEY,
                "aws_secret_access_key": encrypt(fake_bedrock_mod.SECRET_KEY),
                "aws_session_token": encrypt(fake_bedrock_mod.SESSION_TOKEN),
            },
        )
        return make_deployment(group, "bedrock", model, **fields)

    return build


@pytest.fixture(scope="session")
def _anthropic_server() -> Iterator[tuple[BackgroundServer, fake_anthropic_mod.FakeAnthropic]]:
    app, fake = fake_anthropic_mod.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def anthropic_fake(
    _anthropic_server: tuple[BackgroundServer, fake_anthropic_mod.FakeAnthropic],
) -> fake_anthropic_mod.FakeAnthropic:
    _anthropic_server[1].requests.clear()
    return _anthropic_server[1]


@pytest.fixture
def claude_group(
    _anthropic_server: tuple[BackgroundServer, fake_anthropic_mod.FakeAnthropic],
    anthropic_fake: Any,
    make_deployment: Callable[..., Any],
) -> Callable[..., Any]:
    def build(group: str = "claude", model: str = "claude-sonnet-4-5", **fields: Any) -> Any:
        fields.setdefault("api_base", _anthropic_server[0].url)
        fields.setdefault("api_key", fake_anthropic_mod.API_KEY)
        return make_deployment(group, "anthropic", model, **fields)

    return build


@pytest.fixture(scope="session")
def _azure_server() -> Iterator[tuple[BackgroundServer, fake_azure_mod.FakeAzure]]:
    app, fake = fake_azure_mod.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@pytest.fixture
def azure_group(
    _azure_server: tuple[BackgroundServer, fake_azure_mod.FakeAzure],
    make_deployment: Callable[..., Any],
) -> Callable[..., Any]:
    server, fake = _azure_server
    fake.reset()

    def build(group: str = "gpt-prod", model: str = "gpt-4o-mini", **fields: Any) -> Any:
        fields.setdefault("api_base", server.url)
        fields.setdefault("api_key", fake_azure_mod.API_KEY)
        return make_deployment(group, "azure", model, **fields)

    return build
