"""Rate limits, parallel limits and budgets of keys, teams and organizations, enforced before
any upstream call, in process (these tests run without REDIS_URL; see test_limits_redis.py)."""

from __future__ import annotations

import threading
from decimal import Decimal

import openai
import pytest

from apps.core import ratelimit
from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, wait_until

pytestmark = E2E


@pytest.fixture(autouse=True)
def _fresh_counters():
    ratelimit.reset()
    yield
    ratelimit.reset()


def _team(**fields):
    from apps.teams.models import Organization, Team

    org = fields.pop("organization", None)
    if isinstance(org, dict):
        org = Organization.objects.create(**org)
    return Team.objects.create(organization=org, **fields)


def test_rpm_of_a_key_lets_exactly_its_limit_through(
    gateway_server, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt")
    client = openai_client(make_key(rpm_limit=3))
    remaining = []
    for _ in range(3):
        raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
        assert raw.headers["x-ratelimit-limit-requests"] == "3"
        remaining.append(raw.headers["x-ratelimit-remaining-requests"])
    assert remaining == ["2", "1", "0"]
    with pytest.raises(openai.RateLimitError) as refused:
        client.chat.completions.create(model="gpt", messages=HELLO)
    response = refused.value.response
    assert 1 <= int(response.headers["retry-after"]) <= 61
    assert response.headers["x-ratelimit-remaining-requests"] == "0"
    error = response.json()["error"]
    assert error["type"] == "rate_limit_error"
    assert "rpm limit 3" in error["message"] and "key" in error["message"]


def test_rpm_of_a_team_counts_every_key_of_the_team(
    gateway_server, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt")
    team = _team(team_alias="t", rpm_limit=2)
    first, second = openai_client(make_key(team=team)), openai_client(make_key(team=team))
    first.chat.completions.create(model="gpt", messages=HELLO)
    second.chat.completions.create(model="gpt", messages=HELLO)
    with pytest.raises(openai.RateLimitError, match="this team"):
        first.chat.completions.create(model="gpt", messages=HELLO)
    other = openai_client(make_key())
    other.chat.completions.create(model="gpt", messages=HELLO)  # another tenant is not limited


def test_tpm_charges_real_tokens_after_the_call(
    gateway_server, openai_upstream, openai_client, make_key, fake_openai
):
    openai_upstream("gpt")
    client = openai_client(make_key(tpm_limit=8))
    raw = client.chat.completions.with_raw_response.create(model="gpt", messages=HELLO)
    assert raw.headers["x-ratelimit-limit-tokens"] == "8"
    assert raw.headers["x-ratelimit-remaining-tokens"] == "8"
    assert raw.parse().usage.total_tokens >= 8

    def refused() -> bool:
        try:
            client.chat.completions.create(model="gpt", messages=HELLO)
        except openai.RateLimitError as err:
            return "tpm limit 8" in str(err)
        return False

    assert wait_until(refused, what="tpm refusal")


def test_parallel_limit_refuses_the_second_call_in_flight(
    gateway_server, openai_upstream, openai_client, make_key, fake_openai
):
    openai_upstream("slow", "slow-600")
    openai_upstream("gpt")
    client = openai_client(make_key(max_parallel_requests=1))
    slow = threading.Thread(
        target=lambda: client.chat.completions.create(model="slow", messages=HELLO)
    )
    slow.start()
    wait_until(lambda: any(r.body.get("model") == "slow-600" for r in fake_openai.requests))
    with pytest.raises(openai.RateLimitError, match="parallel"):
        client.chat.completions.create(model="gpt", messages=HELLO)
    slow.join(10)
    # The slot is released once the call is over.
    wait_until(lambda: _succeeds(client), what="released slot")


def _succeeds(client) -> bool:
    try:
        client.chat.completions.create(model="gpt", messages=HELLO)
    except openai.RateLimitError:
        return False
    return True


def test_key_over_its_budget_is_refused_before_any_upstream_call(
    gateway_server, openai_upstream, gateway_http, make_key, fake_openai
):
    from apps.keys.models import VirtualKey

    openai_upstream("gpt")
    key = make_key(max_budget=Decimal("0.000002"))
    VirtualKey.objects.update(spend=Decimal("0.0000025"))
    response = gateway_http.post(
        CHAT, json={"model": "gpt", "messages": HELLO}, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 429
    error = openai_error(response)
    assert "Budget has been exceeded" in error["message"]
    assert "key budget" in error["message"]
    assert "max budget 0.000002 USD" in error["message"]
    assert "current spend 0.0000025 USD" in error["message"]
    assert error["type"] == "budget_exceeded"
    assert fake_openai.requests == []


def test_spend_of_calls_counts_against_the_team_budget_at_once(
    gateway_server, openai_upstream, openai_client, make_key
):
    """No wait for the usage writer: the spend counters see each call's cost as it ends."""
    openai_upstream("gpt")
    team = _team(team_alias="t", max_budget=Decimal("0.000001"))
    client = openai_client(make_key(team=team))
    client.chat.completions.create(model="gpt", messages=HELLO)  # costs more than the budget

    def refused() -> str:
        try:
            client.chat.completions.create(model="gpt", messages=HELLO)
        except openai.RateLimitError as err:
            return str(err)
        return ""

    message = wait_until(refused, what="team budget refusal")
    assert "Budget has been exceeded! The team budget" in message


def test_organization_budget_refuses_its_teams_keys(
    gateway_server, openai_upstream, openai_client, make_key
):
    from apps.teams.models import Organization

    openai_upstream("gpt")
    team = _team(team_alias="t", organization={"max_budget": Decimal(1), "spend": Decimal(2)})
    assert Organization.objects.get().spend == 2
    with pytest.raises(openai.RateLimitError, match="organization budget"):
        openai_client(make_key(team=team)).chat.completions.create(model="gpt", messages=HELLO)


def test_refusal_on_messages_is_in_anthropic_shape(
    gateway_server, openai_upstream, gateway_http, make_key
):
    openai_upstream("gpt")
    key = make_key(rpm_limit=1)
    body = {"model": "gpt", "max_tokens": 5, "messages": HELLO}
    headers = {"x-api-key": key, "authorization": ""}
    assert gateway_http.post("/v1/messages", json=body, headers=headers).status_code == 200
    refused = gateway_http.post("/v1/messages", json=body, headers=headers)
    assert refused.status_code == 429
    payload = refused.json()
    assert payload["type"] == "error"
    assert payload["error"]["type"] == "rate_limit_error"
    assert refused.headers["retry-after"]


def test_no_headers_without_limits(gateway_server, openai_upstream, openai_client, make_key):
    openai_upstream("gpt")
    raw = openai_client(make_key()).chat.completions.with_raw_response.create(
        model="gpt", messages=HELLO
    )
    assert "x-ratelimit-limit-requests" not in raw.headers


def test_spent_budget_is_usable_again_once_its_period_resets(
    gateway_server, openai_upstream, openai_client, make_key, settings
):
    """The reset runs inside the serving process (every GATEWAY_BUDGET_RESET_S)."""
    from datetime import timedelta

    from django.utils import timezone

    from apps.keys.models import VirtualKey

    settings.GATEWAY_BUDGET_RESET_S = 0.2
    openai_upstream("gpt")
    client = openai_client(make_key(max_budget=Decimal("0.000001")))
    later = timezone.now() + timedelta(hours=2)
    VirtualKey.objects.update(spend=Decimal("0.00001"), budget_duration="1h", budget_reset_at=later)
    from apps.keys import auth

    auth.clear_cache()
    with pytest.raises(openai.RateLimitError, match="resets at"):
        client.chat.completions.create(model="gpt", messages=HELLO)
    VirtualKey.objects.update(budget_reset_at=timezone.now() - timedelta(seconds=1))
    assert wait_until(lambda: _succeeds(client), timeout=10, what="budget reset")
    key = VirtualKey.objects.get()
    assert key.budget_reset_at > timezone.now() + timedelta(minutes=55)


def test_spend_recorded_by_another_instance_is_seen_without_redis(
    gateway_server, openai_upstream, openai_client, make_key, settings
):
    """Without Redis each process reads back the spend columns every GATEWAY_SPEND_SYNC_S:
    spend written by another instance (here straight into the table, which sends no cache
    invalidation) refuses the next calls within a sync."""
    from apps.keys.models import VirtualKey

    settings.GATEWAY_SPEND_SYNC_S = 0.2
    openai_upstream("gpt")
    client = openai_client(make_key(max_budget=Decimal("0.01")))
    client.chat.completions.create(model="gpt", messages=HELLO)  # the key is cached now
    VirtualKey.objects.update(spend=Decimal("0.02"))

    def refused() -> bool:
        try:
            client.chat.completions.create(model="gpt", messages=HELLO)
        except openai.RateLimitError as err:
            return "current spend 0.02" in str(err)
        return False

    assert wait_until(refused, timeout=5, what="spend of another instance")


def test_refused_model_costs_no_request(gateway_server, openai_upstream, openai_client, make_key):
    openai_upstream("gpt")
    openai_upstream("other")
    client = openai_client(make_key(models=["gpt"], rpm_limit=1))
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="other", messages=HELLO)
    client.chat.completions.create(model="gpt", messages=HELLO)


def test_spend_raised_elsewhere_is_taken_in_when_limits_reload(
    gateway_server, openai_upstream, openai_client, make_key
):
    """Counters never count below the spend the database shows when a key is reloaded."""
    from apps.keys.models import VirtualKey

    openai_upstream("gpt")
    client = openai_client(make_key(max_budget=Decimal(1)))
    client.chat.completions.create(model="gpt", messages=HELLO)
    key = VirtualKey.objects.get()
    key.spend = Decimal(2)
    key.save()  # a change every process hears of: the key is reloaded with its spend
    with pytest.raises(openai.RateLimitError, match="current spend 2"):
        client.chat.completions.create(model="gpt", messages=HELLO)


def test_refusal_on_azure_paths_is_in_openai_shape(
    gateway_server, openai_upstream, gateway_http, make_key
):
    """Azure's SDK calls /openai/deployments/{name}/...: the same limits, its error shape."""
    openai_upstream("gpt")
    key = make_key(rpm_limit=1)
    path = "/openai/deployments/gpt/chat/completions?api-version=2024-06-01"
    headers = {"api-key": key, "authorization": ""}
    body = {"messages": HELLO}
    assert gateway_http.post(path, json=body, headers=headers).status_code == 200
    refused = gateway_http.post(path, json=body, headers=headers)
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "rate_limit_error"
    assert refused.headers["x-ratelimit-limit-requests"] == "1"


def test_user_and_team_member_limits(gateway_server, openai_upstream, openai_client, make_key):
    """A user's rpm counts every key of the user; a team membership's budget counts the
    user's keys in that team only."""
    from apps.keys.models import VirtualKey
    from apps.teams.models import GatewayUser, TeamMembership

    openai_upstream("gpt")
    user = GatewayUser.objects.create(user_id="u-1", rpm_limit=2)
    team = _team(team_alias="t")
    member = TeamMembership.objects.create(team=team, user=user, max_budget=Decimal(1))
    first, second = make_key(), make_key(team=team)
    VirtualKey.objects.update(user=user)
    openai_client(first).chat.completions.create(model="gpt", messages=HELLO)
    openai_client(second).chat.completions.create(model="gpt", messages=HELLO)
    with pytest.raises(openai.RateLimitError, match="this user"):
        openai_client(first).chat.completions.create(model="gpt", messages=HELLO)
    user.rpm_limit = None
    user.save()
    member.spend = Decimal(2)
    member.save()  # a change the caches hear of
    with pytest.raises(openai.RateLimitError, match="team member budget"):
        openai_client(second).chat.completions.create(model="gpt", messages=HELLO)
    openai_client(first).chat.completions.create(model="gpt", messages=HELLO)


def test_key_of_a_blocked_organization_is_refused(
    gateway_server, openai_upstream, openai_client, make_key
):
    openai_upstream("gpt")
    team = _team(team_alias="t", organization={"blocked": True})
    with pytest.raises(openai.AuthenticationError, match="organization is blocked"):
        openai_client(make_key(team=team)).chat.completions.create(model="gpt", messages=HELLO)
