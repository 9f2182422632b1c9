"""The routing table: what is loaded, how a model name resolves, the order deployments are
tried in, who may use what, and the cache with its invalidation."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from apps.core.db import db_task
from apps.core.errors import ModelNotFound, PermissionDenied
from apps.core.secrets import encrypt
from apps.keys.auth import MASTER, Principal
from apps.routing import selectors, strategies
from apps.routing.models import Deployment, ModelGroup
from apps.routing.selectors import candidates_for, load_table, routing_table, visible_groups

pytestmark = pytest.mark.usefixtures("thread_db")


def deploy(group: str, model: str = "gpt-4o-mini", provider: str = "openai", **fields: Any):
    grp, _ = ModelGroup.objects.get_or_create(name=group)
    return Deployment.objects.create(group=grp, provider=provider, model=model, **fields)


adeploy = db_task(deploy)


def key(*models: str) -> Principal:
    return Principal(key_id=1, allowed_models=frozenset(models))


class Loads:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        load = selectors._aload_table

        async def counted() -> Any:
            self.count += 1
            return await load()

        monkeypatch.setattr(selectors, "_aload_table", counted)


@pytest.fixture
def loads(monkeypatch) -> Loads:
    return Loads(monkeypatch)


# --- loading --------------------------------------------------------------------------------


def test_table_holds_enabled_groups_and_deployments(monkeypatch):
    monkeypatch.setenv("UPSTREAM_TEST_KEY", "sk-from-env")
    a = deploy("gpt", api_key=encrypt("sk-secret-1"), api_base="http://up/v1", timeout=12)
    b = deploy("gpt", "gpt-4o", api_key="os.environ/UPSTREAM_TEST_KEY", rpm=10, weight=3)
    deploy("gpt", "off", enabled=False)
    deploy("hidden", enabled=True)
    ModelGroup.objects.filter(name="hidden").update(enabled=False)
    ModelGroup.objects.create(name="empty")
    table = load_table()
    assert sorted(table.groups) == ["gpt"]
    first, second = table.groups["gpt"].candidates
    assert first.target.deployment_id == a.model_id
    assert (first.target.api_key, first.target.api_base, first.target.timeout_s) == (
        "sk-secret-1",
        "http://up/v1",
        12,
    )
    assert (second.target.api_key, second.rpm, second.weight) == ("sk-from-env", 10, 3)
    assert second.target.deployment_id == b.model_id
    assert first.target.model_group == "gpt"


def test_deployment_of_an_unknown_provider_is_skipped_not_fatal(caplog):
    deploy("gpt")
    deploy("gpt", provider="no-such-provider")
    table = load_table()
    assert [c.target.provider for c in table.groups["gpt"].candidates] == ["openai"]
    assert "skipped" in caplog.text


def test_extra_params_and_drop_settings_reach_the_target(monkeypatch, settings):
    settings.GATEWAY_DROP_PARAMS = False
    monkeypatch.setenv("ORG_ID", "org-7")
    deploy(
        "gpt",
        extra_params={
            "organization": "os.environ/ORG_ID",
            "drop_params": True,
            "additional_drop_params": ["user"],
        },
        secret_params={"client_secret": encrypt("cs-1")},
        headers={"x-extra": "1"},
        input_cost_per_token=Decimal("0.000002"),
    )
    [candidate] = load_table().groups["gpt"].candidates
    target = candidate.target
    assert dict(target.params) == {"organization": "org-7", "client_secret": "cs-1"}
    assert target.drop_params is True
    assert target.additional_drop_params == ("user",)
    assert dict(target.headers) == {"x-extra": "1"}
    assert candidate.prices.input == Decimal("0.000002")


def test_global_drop_params_comes_from_the_config(settings):
    from apps.core.models import ProxyConfig

    settings.GATEWAY_DROP_PARAMS = False
    deploy("gpt")
    assert load_table().groups["gpt"].candidates[0].target.drop_params is False
    ProxyConfig.objects.create(pk=1, litellm_settings={"drop_params": True})
    assert load_table().groups["gpt"].candidates[0].target.drop_params is True


# --- resolving ------------------------------------------------------------------------------


def test_wildcards_resolve_most_specific_first():
    deploy("*", "*")
    deploy("openai/*", "*")
    deploy("openai/gpt-4*", "gpt-4*")
    deploy("openai/gpt-4o", "gpt-4o")
    table = load_table()
    assert [g.name for g in table.wildcards] == ["openai/gpt-4*", "openai/*", "*"]
    assert table.resolve("openai/gpt-4o")[0].name == "openai/gpt-4o"
    group, suffix = table.resolve("openai/gpt-4.1")
    assert (group.name, suffix) == ("openai/gpt-4*", ".1")
    assert table.resolve("openai/o3")[0].name == "openai/*"
    assert table.resolve("anything")[0].name == "*"


async def test_wildcard_candidate_gets_the_matched_model():
    await adeploy("openai/*", "*")
    _, [candidate] = await candidates_for(principal=MASTER, model="openai/gpt-4.1-nano")
    assert candidate.target.model == "gpt-4.1-nano"
    assert candidate.target.model_group == "openai/gpt-4.1-nano"


async def test_unknown_model_is_not_found():
    await adeploy("gpt")
    with pytest.raises(ModelNotFound) as info:
        await candidates_for(principal=MASTER, model="nope")
    assert (info.value.http_status, info.value.param) == (404, "model")


async def test_key_without_the_model_is_denied():
    await adeploy("gpt")
    await adeploy("other")
    with pytest.raises(PermissionDenied):
        await candidates_for(principal=key("other"), model="gpt")
    # A restricted key learns nothing about what is served: 403 for unknown names too.
    with pytest.raises(PermissionDenied):
        await candidates_for(principal=key("other"), model="nope")
    group, _ = await candidates_for(principal=key("other"), model="other")
    assert group.name == "other"


async def test_visible_groups_follow_the_key():
    for name in ("a", "b", "c/*"):
        await adeploy(name)
    assert [g.name for g in await visible_groups(MASTER)] == ["a", "b", "c/*"]
    assert [g.name for g in await visible_groups(key("b", "c/*"))] == ["b", "c/*"]


# --- ordering -------------------------------------------------------------------------------


async def test_lower_order_is_tried_first():
    late = await adeploy("gpt", "late", order=2)
    early = await adeploy("gpt", "early", order=1)
    for _ in range(20):
        _, found = await candidates_for(principal=MASTER, model="gpt")
        candidates = strategies.order(found, "simple-shuffle")
        assert [c.target.deployment_id for c in candidates] == [early.model_id, late.model_id]


async def test_weights_shape_the_first_choice():
    random.seed(1234)
    await adeploy("gpt", "light", weight=1)
    await adeploy("gpt", "heavy", weight=9)
    firsts: Counter[str] = Counter()
    for _ in range(400):
        _, found = await candidates_for(principal=MASTER, model="gpt")
        candidates = strategies.order(found, "simple-shuffle")
        assert len(candidates) == 2
        firsts[candidates[0].target.model] += 1
    assert 300 < firsts["heavy"] < 395


# --- cache ----------------------------------------------------------------------------------


async def test_warm_table_needs_no_database(loads):
    await adeploy("gpt")
    for _ in range(5):
        await routing_table()
        await candidates_for(principal=MASTER, model="gpt")
    assert loads.count == 1


async def test_deployment_change_reloads_the_table(loads):
    await adeploy("gpt")
    await routing_table()
    await adeploy("new")
    table = await routing_table()
    assert "new" in table.groups
    assert loads.count == 2


async def test_table_expires_after_the_cache_ttl(loads, settings, clock):
    settings.GATEWAY_CACHE_TTL_S = 60
    await adeploy("gpt")
    await routing_table()
    clock.advance(59.9)
    await routing_table()
    assert loads.count == 1
    clock.advance(0.1)
    await routing_table()
    assert loads.count == 2


async def test_a_change_during_a_load_is_not_undone_by_the_load(monkeypatch):
    """A load that read the deployments before a change must not become the cached table
    after the change cleared it: the change would stay invisible for a whole cache TTL."""
    await adeploy("gpt")
    stale = await db_task(load_table)()
    gate = asyncio.Event()
    started = asyncio.Event()

    async def slow_load() -> Any:
        started.set()
        await gate.wait()
        return stale

    monkeypatch.setattr(selectors, "_aload_table", slow_load)
    first = asyncio.create_task(routing_table())
    await started.wait()
    await adeploy("added-meanwhile")  # clears the cached table
    gate.set()
    await first
    monkeypatch.undo()
    assert "added-meanwhile" in (await routing_table()).groups


async def test_model_aliases_of_key_and_team_route_to_their_groups():
    """Regression: a key's ``aliases`` and its team's ``model_aliases`` were stored and shown
    by the management API but never used, so a client asking for an alias got a 404."""
    await adeploy("gpt-4o", "gpt-4o")
    await adeploy("claude", "claude-sonnet")
    caller = Principal(
        key_id=1,
        allowed_models=frozenset({"gpt-4o", "claude"}),
        aliases={"fast": "gpt-4o", "smart": "claude"},
    )
    group, [candidate] = await candidates_for(principal=caller, model="fast")
    assert (group.name, candidate.target.model) == ("gpt-4o", "gpt-4o")
    group, _ = await candidates_for(principal=caller, model="smart")
    assert group.name == "claude"
    with pytest.raises(ModelNotFound):
        await candidates_for(principal=MASTER, model="fast")
