"""Six upstream providers behind one gateway, for tests/gateway/test_cross_provider.py.

Every fake upstream (OpenAI, Azure OpenAI, Anthropic, Gemini API, Vertex AI, Bedrock) runs on
loopback, and each provider gets three model groups, so a client program reaches any of them by
changing only the model name:
- ``via-<name>``: a priced model that answers (echoes the prompt, calls a forced tool, then quotes
  the tool result);
- ``via-<name>-limited``: the upstream answers its rate-limit error (HTTP 429 or its equivalent);
- ``via-<name>-badauth``: the upstream refuses the deployment's credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import pytest

from tests.conftest import UPSTREAM_KEY, GatewayProcess
from tests.fakes import anthropic as fake_anthropic
from tests.fakes import azure as fake_azure
from tests.fakes import bedrock as fake_bedrock
from tests.fakes import gemini as fake_gemini
from tests.fakes import openai as fake_openai
from tests.fakes.server import BackgroundServer
from tests.leaks import secret

GEMINI_KEY = secret("gemini-test-key")
VERTEX_PARAMS = {"vertex_project": "fake-project", "vertex_location": "us-east5"}
# UsageLog.cost is a DecimalField with 10 decimal places.
COST_PLACES = Decimal("1e-10")


@dataclass(frozen=True)
class Route:
    """One provider as the client sees it: which model groups reach it and how its fake answers."""

    name: str
    provider: str
    model: str  # the upstream model (Azure: the deployment name)
    limited_model: str  # the upstream model whose fake answers with a rate-limit error
    # The list price the gateway must bill, written here from the provider's price page:
    # USD per million input tokens, per million output tokens.
    usd_per_million: tuple[str, str]
    echo_prefix: str = ""  # what the fake says before echoing the prompt
    model_info: dict[str, Any] = field(default_factory=dict)

    @property
    def group(self) -> str:
        return f"via-{self.name}"

    @property
    def limited_group(self) -> str:
        return f"via-{self.name}-limited"

    @property
    def badauth_group(self) -> str:
        return f"via-{self.name}-badauth"

    def reply_to(self, prompt: str) -> str:
        return self.echo_prefix + prompt

    def price(self) -> tuple[Decimal, Decimal]:
        """USD per input token and per output token."""
        input_usd, output_usd = self.usd_per_million
        million = Decimal(1_000_000)
        return Decimal(input_usd) / million, Decimal(output_usd) / million


ROUTES = (
    # https://platform.openai.com/docs/pricing
    Route("openai", "openai", "gpt-4o-mini", "error-429", ("0.15", "0.60")),
    Route(
        "azure",
        "azure",
        "mini-prod",
        "error-429",
        ("0.15", "0.60"),  # billed as its base model, gpt-4o-mini
        model_info={"base_model": "gpt-4o-mini"},
    ),
    # https://platform.claude.com/docs/en/about-claude/pricing
    Route("anthropic", "anthropic", "claude-3-5-haiku-20241022", "error-429", ("0.80", "4.00")),
    # https://ai.google.dev/gemini-api/docs/pricing
    Route("gemini", "gemini", "gemini-2.0-flash", "error-429", ("0.10", "0.40")),
    Route("vertex", "vertex_ai", "gemini-2.0-flash", "error-429", ("0.10", "0.40")),
    # https://aws.amazon.com/bedrock/pricing/
    Route(
        "bedrock",
        "bedrock",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "error-ThrottlingException",
        ("0.80", "4.00"),
        echo_prefix="Héllo from Bedrock ✓ — you said: ",
    ),
)


@dataclass
class Upstreams:
    """The running fakes (OpenAI's is the session-wide one from tests/conftest.py)."""

    openai: BackgroundServer
    azure: BackgroundServer
    anthropic: BackgroundServer
    google: BackgroundServer
    bedrock: BackgroundServer
    service_account: dict[str, Any]
    # Same identity, another private key: the token endpoint refuses its assertions.
    stale_service_account: dict[str, Any]


@pytest.fixture(scope="module")
def upstreams(
    _fake_openai_server: tuple[BackgroundServer, fake_openai.FakeOpenAI],
) -> Iterator[Upstreams]:
    tool_input = {"location": "Paris"}
    azure = BackgroundServer(fake_azure.make_app()[0])
    anthropic = BackgroundServer(
        fake_anthropic.make_app(fake_anthropic.FakeAnthropic(tool_input=tool_input))[0]
    )
    google_app, google = fake_gemini.make_app(api_key=GEMINI_KEY, tool_args=tool_input)
    google_server = BackgroundServer(google_app)
    bedrock = BackgroundServer(fake_bedrock.create_app(tool_input=tool_input))
    started = [azure, anthropic, google_server, bedrock]
    for server in started:
        server.start()
    info, public_key = fake_gemini.generate_service_account(google_server.url + "/token")
    stale, _ = fake_gemini.generate_service_account(google_server.url + "/token")
    google.public_key, google.client_email = public_key, info["client_email"]
    yield Upstreams(
        openai=_fake_openai_server[0],
        azure=azure,
        anthropic=anthropic,
        google=google_server,
        bedrock=bedrock,
        service_account=info,
        stale_service_account=stale,
    )
    for server in started:
        server.stop()


def _deployments(route: Route, up: Upstreams) -> dict[str, tuple[str, dict[str, Any]]]:
    """group -> (upstream model, Deployment fields) for the route's three groups."""
    from apps.core.secrets import encrypt

    def vertex(credentials: dict[str, Any]) -> dict[str, Any]:
        return {
            "api_base": up.google.url,
            "extra_params": VERTEX_PARAMS,
            "secret_params": {"vertex_credentials": encrypt(orjson.dumps(credentials).decode())},
        }

    def bedrock(secret: str) -> dict[str, Any]:
        return {
            "api_base": up.bedrock.url,
            "extra_params": {"aws_region_name": fake_bedrock.REGION},
            "secret_params": {
                "aws_access_key_id": fake_bedrock.ACCESS_KEY,
                "aws_secret_access_key": encrypt(secret),
            },
        }

    good: dict[str, Any]
    bad: dict[str, Any]
    bad_model = route.model
    if route.name == "openai":
        good = bad = {"api_base": up.openai.url + "/v1", "api_key": UPSTREAM_KEY}
        bad_model = "error-401"  # the fake OpenAI checks no keys; this model answers 401
    elif route.name == "azure":
        good = {"api_base": up.azure.url, "api_key": fake_azure.API_KEY}
        bad = {**good, "api_key": "wrong-azure-key"}
    elif route.name == "anthropic":
        good = {"api_base": up.anthropic.url, "api_key": fake_anthropic.API_KEY}
        bad = {**good, "api_key": "sk-ant-wrong-key"}
    elif route.name == "gemini":
        good = {"api_base": up.google.url + "/v1beta", "api_key": GEMINI_KEY}
        bad = {**good, "api_key": "wrong-gemini-key"}
    elif route.name == "vertex":
        good, bad = vertex(up.service_account), vertex(up.stale_service_account)
    else:
        good, bad = bedrock(fake_bedrock.SECRET_KEY), bedrock("not-the-secret-key")
    info = {"model_info": route.model_info}
    return {
        route.group: (route.model, {**good, **info}),
        route.limited_group: (route.limited_model, {**good, **info}),
        route.badauth_group: (bad_model, {**bad, **info}),
    }


@pytest.fixture
def deploy(
    gateway_server: GatewayProcess, upstreams: Upstreams, make_deployment: Callable[..., Any]
) -> Callable[[Route], Route]:
    """deploy(route) creates the route's three model groups and returns the route."""

    def build(route: Route) -> Route:
        for group, (model, fields) in _deployments(route, upstreams).items():
            make_deployment(group, route.provider, model, **fields)
        return route

    return build


def expected_cost(route: Route, prompt_tokens: int, completion_tokens: int) -> Decimal:
    """Tokens times the route's written price, as stored in the usage row."""
    input_price, output_price = route.price()
    cost = prompt_tokens * input_price + completion_tokens * output_price
    return cost.quantize(COST_PLACES)


def usage_rows(gateway: GatewayProcess) -> list[Any]:
    """Every usage row written so far, oldest first (the queue is flushed first)."""
    from apps.usage.models import UsageLog

    gateway.flush_usage()
    return list(UsageLog.objects.order_by("id"))


def assert_billed(
    gateway: GatewayProcess, route: Route, tokens: list[tuple[int, int]], *, stream: bool = False
) -> None:
    """One successful row per request, in order, with the client-reported (prompt, completion)
    tokens and their cost at the bundled price."""
    rows = usage_rows(gateway)
    assert [(r.prompt_tokens, r.completion_tokens) for r in rows] == tokens
    for row, (prompt, completion) in zip(rows, tokens, strict=True):
        assert prompt > 0
        assert (row.status_code, row.provider, row.stream) == (200, route.provider, stream)
        assert row.total_tokens == prompt + completion
        assert row.cost == expected_cost(route, prompt, completion) > 0


def assert_refused(gateway: GatewayProcess, route: Route, statuses: list[int]) -> None:
    """One unbilled row per refused request, with the status the client got."""
    rows = usage_rows(gateway)
    assert [r.status_code for r in rows] == statuses
    for row in rows:
        assert row.provider == route.provider
        assert (row.prompt_tokens, row.completion_tokens, row.cost) == (0, 0, 0)
