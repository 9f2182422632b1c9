"""End users (the request's ``user``): blocked, budgets and limits, region and default model."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from apps.core import ratelimit
from tests.gateway.helpers import E2E, HELLO, wait_until

pytestmark = E2E


@pytest.fixture(autouse=True)
def _fresh_counters():
    ratelimit.reset()
    yield
    ratelimit.reset()


def _end_user(user_id: str, **fields):
    from apps.teams.models import EndUser

    return EndUser.objects.create(user_id=user_id, **fields)


def _chat(client, user: str | None = None, model: str = "gpt"):
    extra = {"user": user} if user is not None else {}
    return client.chat.completions.with_raw_response.create(model=model, messages=HELLO, **extra)


def test_end_user_budget_refuses_that_end_user_only(
    gateway_server, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt")
    _end_user("cust-1", max_budget=Decimal("0.000001"))
    client = openai_client(make_key())
    _chat(client, "cust-1")  # costs more than the budget

    def refused() -> str:
        try:
            _chat(client, "cust-1")
        except openai.RateLimitError as err:
            return str(err)
        return ""

    message = wait_until(refused, what="end user budget refusal")
    assert "Budget has been exceeded! The end user budget" in message
    assert _chat(client, "cust-2").status_code == 200  # another end user
    assert _chat(client).status_code == 200  # no end user


def test_end_user_rpm(gateway_server, openai_upstream, openai_client, make_key):
    openai_upstream("gpt")
    _end_user("cust-1", rpm_limit=1)
    first, second = openai_client(make_key()), openai_client(make_key())
    assert _chat(first, "cust-1").headers["x-ratelimit-limit-requests"] == "1"
    with pytest.raises(openai.RateLimitError, match="this end user"):
        _chat(second, "cust-1")  # counted across keys


def test_blocked_end_user_is_refused(gateway_server, openai_upstream, openai_client, make_key):
    openai_upstream("gpt")
    _end_user("cust-1", blocked=True)
    with pytest.raises(openai.PermissionDeniedError, match="blocked"):
        _chat(openai_client(make_key()), "cust-1")


def test_end_user_budget_from_a_shared_budget(
    gateway_server, openai_upstream, openai_client, make_key
):
    from apps.teams.models import Budget

    openai_upstream("gpt")
    budget = Budget.objects.create(budget_id="tier", max_budget=Decimal(1))
    _end_user("cust-1", budget=budget, spend=Decimal(2))
    with pytest.raises(openai.RateLimitError, match="end user budget: max budget 1 USD"):
        _chat(openai_client(make_key()), "cust-1")


def test_end_user_region_routes_to_that_region_only(
    gateway_server, openai_upstream, openai_client, make_key, fake_openai
):
    openai_upstream("gpt", "us-model", region_name="us")
    openai_upstream("gpt", "eu-model", region_name="eu")
    _end_user("cust-eu", allowed_model_region="eu")
    client = openai_client(make_key())
    for _ in range(5):
        raw = _chat(client, "cust-eu")
        assert raw.headers["x-litellm-model-region"] == "eu"
        assert raw.parse().model == "eu-model"
    assert "x-litellm-model-region" not in _chat(client, "someone-else").headers


def test_end_user_default_model_when_no_deployment_in_region(
    gateway_server, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt", "us-model", region_name="us")
    openai_upstream("gpt-eu", "eu-model", region_name="eu")
    _end_user("cust-eu", allowed_model_region="eu", default_model="gpt-eu")
    _end_user("cust-eu-strict", allowed_model_region="eu")
    client = openai_client(make_key())
    raw = _chat(client, "cust-eu")
    assert raw.parse().model == "eu-model"
    assert raw.headers["x-litellm-model-group"] == "gpt-eu"
    with pytest.raises(openai.APIStatusError, match="region 'eu'"):
        _chat(client, "cust-eu-strict")


def test_end_user_id_with_nul_is_no_server_error(
    gateway_server, openai_upstream, openai_client, make_key
):
    """Regression: looking up 'a\\x00b' failed in PostgreSQL and the call answered 500."""
    openai_upstream("gpt")
    assert _chat(openai_client(make_key()), "a\x00b").status_code == 200
