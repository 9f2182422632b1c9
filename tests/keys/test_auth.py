"""authenticate(): master and virtual keys, model lists, expiry, and the per-process cache
(with its invalidation) that keeps the database off the request path."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from apps.core import changes
from apps.core.db import db_task
from apps.core.errors import AuthenticationError, PermissionDenied
from apps.core.models import ProxyConfig
from apps.keys import auth, hashing
from apps.keys.auth import MASTER, Principal, authenticate, bearer_token
from apps.keys.models import VirtualKey
from apps.keys.services import key_block, key_issue
from apps.teams.models import Organization, Team
from tests.conftest import MASTER_KEY

pytestmark = pytest.mark.usefixtures("thread_db")


class Loads:
    """Counts the database loads behind authenticate()."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys = 0
        self.masters = 0
        load_key, load_master = auth._aload_key, auth._aload_master

        async def counted_key(digest: str) -> Principal | None:
            self.keys += 1
            return await load_key(digest)

        async def counted_master() -> frozenset[str]:
            self.masters += 1
            return await load_master()

        monkeypatch.setattr(auth, "_aload_key", counted_key)
        monkeypatch.setattr(auth, "_aload_master", counted_master)


@pytest.fixture
def loads(monkeypatch) -> Loads:
    return Loads(monkeypatch)


issue = db_task(key_issue)


@pytest.mark.parametrize(
    ("header", "token"),
    [
        ("Bearer sk-abc", "sk-abc"),
        ("bearer sk-abc", "sk-abc"),
        ("BEARER   sk-abc  ", "sk-abc"),
        ("sk-abc", "sk-abc"),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("token", [None, ""])
async def test_no_token_is_refused(token):
    with pytest.raises(AuthenticationError) as info:
        await authenticate(token)
    assert (info.value.http_status, info.value.code) == (401, "missing_api_key")


async def test_master_key_from_the_environment():
    assert await authenticate(MASTER_KEY) is MASTER
    assert MASTER.may_use("anything")


async def test_master_key_from_an_imported_config(settings):
    settings.PROXY_MASTER_KEY = None
    await db_task(ProxyConfig.objects.create)(
        pk=1, master_key_digest=hashing.digest("sk-from-config")
    )
    assert await authenticate("sk-from-config") is MASTER
    with pytest.raises(AuthenticationError):
        await authenticate(MASTER_KEY)


async def test_master_key_reference_is_read_from_the_environment(settings, monkeypatch):
    settings.PROXY_MASTER_KEY = None
    monkeypatch.setenv("MY_MASTER", "sk-env-master")
    await db_task(ProxyConfig.objects.create)(pk=1, master_key_ref="os.environ/MY_MASTER")
    assert await authenticate("sk-env-master") is MASTER


async def test_virtual_key_principal():
    org = await db_task(Organization.objects.create)(organization_alias="acme")
    team = await db_task(Team.objects.create)(team_alias="research", organization=org)
    key, raw = await issue(
        team=team,
        key_alias="ci",
        models=["gpt", "embed"],
        user_id="u-1",
        rpm_limit=10,
        metadata={"env": "test"},
    )
    principal = await authenticate(raw)
    assert principal.key_id == key.pk and not principal.is_master
    assert (principal.key_alias, principal.team_id, principal.team_alias) == (
        "ci",
        team.pk,
        "research",
    )
    assert (principal.organization_id, principal.user_id) == (org.pk, "u-1")
    assert principal.allowed_models == frozenset({"gpt", "embed"})
    assert principal.rpm_limit == 10 and principal.metadata == {"env": "test"}
    assert principal.may_use("gpt") and not principal.may_use("other")
    with pytest.raises(PermissionDenied) as info:
        principal.check_model("other")
    assert (info.value.http_status, info.value.param) == (403, "model")


async def test_unknown_key_is_refused():
    with pytest.raises(AuthenticationError) as info:
        await authenticate("sk-unknown-key")
    assert info.value.code == "invalid_api_key"


@pytest.mark.parametrize(
    ("key_models", "team_models", "org_models", "expected"),
    [
        ([], [], [], None),
        (["a", "b"], [], [], {"a", "b"}),
        (["a", "b"], ["b", "c"], [], {"b"}),
        ([], ["b", "c"], ["c"], {"c"}),
        (["all-proxy-models"], ["x"], [], {"x"}),
        (["*"], [], [], None),
        (["a"], ["b"], [], set()),
    ],
)
async def test_allowed_models_are_the_intersection_of_key_team_and_org(
    key_models, team_models, org_models, expected
):
    org = await db_task(Organization.objects.create)(
        organization_alias="o", allowed_models=org_models
    )
    team = await db_task(Team.objects.create)(
        team_alias="t", organization=org, allowed_models=team_models
    )
    _, raw = await issue(team=team, models=key_models)
    principal = await authenticate(raw)
    assert principal.allowed_models == (None if expected is None else frozenset(expected))


async def test_expired_key_is_refused_even_from_the_cache(clock):
    soon = clock.now() + timedelta(seconds=30)
    _, raw = await issue(expires_at=soon)
    assert (await authenticate(raw)).expires_at == soon
    clock.advance(29)
    await authenticate(raw)
    clock.advance(1)
    with pytest.raises(AuthenticationError) as info:
        await authenticate(raw)
    assert info.value.code == "expired_api_key"


async def test_blocked_key_and_blocked_team_are_refused():
    team = await db_task(Team.objects.create)(team_alias="t", blocked=True)
    _, in_blocked_team = await issue(team=team)
    key, blocked = await issue()
    await db_task(key_block)(key=key)
    for raw, code in ((in_blocked_team, "team_blocked"), (blocked, "key_blocked")):
        with pytest.raises(AuthenticationError) as info:
            await authenticate(raw)
        assert info.value.code == code
        assert "blocked" in info.value.message


async def test_warm_cache_needs_no_database(loads):
    _, raw = await issue()
    for _ in range(5):
        await authenticate(raw)
        await authenticate(MASTER_KEY)
    assert (loads.keys, loads.masters) == (1, 1)


async def test_unknown_keys_are_cached_briefly(loads):
    for _ in range(5):
        with pytest.raises(AuthenticationError):
            await authenticate("sk-flood")
    assert loads.keys == 1


async def test_entries_expire_after_the_cache_ttl(loads, settings, clock):
    settings.GATEWAY_CACHE_TTL_S = 60
    _, raw = await issue()
    await authenticate(raw)
    clock.advance(59.9)
    await authenticate(raw)
    assert loads.keys == 1
    clock.advance(0.1)
    await authenticate(raw)
    assert loads.keys == 2


async def test_unknown_keys_are_forgotten_after_ten_seconds(loads, clock):
    with pytest.raises(AuthenticationError):
        await authenticate("sk-not-yet")
    clock.advance(9.9)
    with pytest.raises(AuthenticationError):
        await authenticate("sk-not-yet")
    assert loads.keys == 1
    clock.advance(0.1)
    with pytest.raises(AuthenticationError):
        await authenticate("sk-not-yet")
    assert loads.keys == 2


async def test_a_full_cache_starts_over_and_keeps_working(loads, settings):
    settings.GATEWAY_KEY_CACHE_SIZE = 2
    raws = [(await issue())[1] for _ in range(4)]
    for raw in raws + raws:
        assert (await authenticate(raw)).key_id is not None
    assert len(auth._principals) <= 2


async def test_key_change_clears_the_cache(loads):
    key, raw = await issue()
    await authenticate(raw)
    await db_task(key_block)(key=key)
    with pytest.raises(AuthenticationError):
        await authenticate(raw)
    assert loads.keys == 2


async def test_spend_update_does_not_clear_the_cache(loads):
    key, raw = await issue()
    await authenticate(raw)

    def add_spend() -> None:
        key.spend += 1
        key.save(update_fields=["spend", "updated_at"])

    await db_task(add_spend)()
    await authenticate(raw)
    assert loads.keys == 1


async def test_a_change_during_a_load_is_not_undone_by_the_load(monkeypatch):
    """A load that read the key before it was blocked must not put the stale answer in the
    cache after the change cleared it: the key would keep working for a whole cache TTL."""
    key, raw = await issue()
    stale = await auth._aload_key(hashing.digest(raw))
    gate = asyncio.Event()
    started = asyncio.Event()

    async def slow_load(digest: str) -> Any:
        started.set()
        await gate.wait()
        return stale  # read before the block below

    monkeypatch.setattr(auth, "_aload_key", slow_load)
    first = asyncio.create_task(authenticate(raw))
    await started.wait()
    await db_task(key_block)(key=key)  # clears the cache
    gate.set()
    await first  # this call may still pass: it began before the change
    monkeypatch.undo()
    with pytest.raises(AuthenticationError):
        await authenticate(raw)


async def test_bulk_deleted_key_is_refused(loads):
    key, raw = await issue()
    await authenticate(raw)
    await db_task(VirtualKey.objects.filter(pk=key.pk).delete)()
    with pytest.raises(AuthenticationError):
        await authenticate(raw)


async def test_announced_change_clears_the_cache(loads):
    _, raw = await issue()
    await authenticate(raw)
    await db_task(changes.changed)(changes.TOPIC_KEYS)
    await authenticate(raw)
    assert loads.keys == 2
