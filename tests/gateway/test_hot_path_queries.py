"""Once its caches are warm, the request path issues no database query for auth or routing.

Queries are counted at Django's cursor, in every thread of the process (the gateway runs ORM
work in worker threads), so a query from anywhere on the request path would be seen. Only the
background jobs that are meant to touch the database are left out: the usage writer's
flush, the change-marker poll, the budget resets and the spend sync.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from django.db.backends import utils

from tests.gateway.helpers import E2E, HELLO, wait_until

pytestmark = E2E

BACKGROUND = (
    "apps/usage/writer.py",
    "apps/core/changes.py",
    "apps/keys/budgets.py",
    "apps/keys/spend_sync.py",
)


class QueryLog:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statements: list[str] = []

    def add(self, sql: Any) -> None:
        stack = traceback.extract_stack()
        if any(frame.filename.endswith(BACKGROUND) for frame in stack):
            return
        with self.lock:
            self.statements.append(str(sql))

    def take(self) -> list[str]:
        with self.lock:
            out, self.statements = self.statements, []
        return out


@pytest.fixture
def queries(monkeypatch) -> Iterator[QueryLog]:
    log = QueryLog()
    execute, executemany = utils.CursorWrapper.execute, utils.CursorWrapper.executemany

    def counted_execute(self: Any, sql: Any, params: Any = None) -> Any:
        log.add(sql)
        return execute(self, sql, params)

    def counted_executemany(self: Any, sql: Any, param_list: Any) -> Any:
        log.add(sql)
        return executemany(self, sql, param_list)

    monkeypatch.setattr(utils.CursorWrapper, "execute", counted_execute)
    monkeypatch.setattr(utils.CursorWrapper, "executemany", counted_executemany)
    yield log


def settle_change_poll() -> None:
    """Wait until the gateway's change poll has seen the changes this test made: its echo of
    them would otherwise clear the caches again in the middle of the measurement."""
    from apps.core import changes
    from apps.core.models import ChangeMarker

    markers = dict(ChangeMarker.objects.values_list("topic", "revision"))
    wait_until(
        lambda: all(changes._seen.get(t) == r for t, r in markers.items()), what="change poll"
    )


def test_no_query_for_auth_or_routing_once_warm(
    gateway_server, gateway_http, openai_upstream, openai_client, make_key, queries
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("embed", "text-embedding-3-small")
    key = make_key(models=["gpt", "embed"])
    client = openai_client(key)
    settle_change_poll()
    queries.take()
    # Cold: the key, the master keys and the routing table are loaded once.
    client.chat.completions.create(model="gpt", messages=HELLO)
    cold = queries.take()
    assert any("keys_virtualkey" in sql for sql in cold), cold
    assert any("routing_deployment" in sql for sql in cold), cold
    # Warm: nothing, whatever the endpoint, the key, stream or not, success or client error.
    for _ in range(5):
        client.chat.completions.create(model="gpt", messages=HELLO)
        list(client.chat.completions.create(model="gpt", messages=HELLO, stream=True))
        client.embeddings.create(model="embed", input="x")
        client.models.list()
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
        gateway_http.post("/v1/chat/completions", json={"model": "gpt", "messages": []})
        gateway_http.post("/v1/chat/completions", json={"model": "nope", "messages": HELLO})
    assert queries.take() == []


def test_counter_sees_queries_made_in_worker_threads(gateway_server, queries):
    """The counting itself works in the threads where the gateway runs ORM calls."""
    from apps.core.db import db_task
    from apps.keys.models import VirtualKey

    gateway_server.call(db_task(VirtualKey.objects.count)())
    assert any("keys_virtualkey" in sql for sql in queries.take())


def test_unknown_keys_are_cached_too(gateway_server, gateway_http, openai_upstream, queries):
    openai_upstream("gpt", "gpt-4o-mini")
    settle_change_poll()
    headers = {"authorization": "Bearer sk-flood-of-bad-keys"}
    body = {"model": "gpt", "messages": HELLO}
    assert gateway_http.post("/v1/chat/completions", json=body, headers=headers).status_code == 401
    assert queries.take()
    for _ in range(10):
        gateway_http.post("/v1/chat/completions", json=body, headers=headers)
    assert queries.take() == []


def test_no_query_for_limits_and_budgets_once_warm(
    gateway_server, openai_upstream, openai_client, make_key, queries
):
    """A key with every limit set, in a team and organization with budgets, of a user with a
    team membership, called for a registered end user and an unknown one: the checks and the
    settling of each call run on counters and caches, never on the database."""
    from decimal import Decimal

    from apps.teams.models import Organization, Team

    openai_upstream("gpt", "gpt-4o-mini")
    org = Organization.objects.create(max_budget=Decimal(100))
    team = Team.objects.create(
        team_alias="t",
        organization=org,
        max_budget=Decimal(100),
        rpm_limit=10_000,
        tpm_limit=10**9,
    )
    key = make_key(
        team=team,
        max_budget=Decimal(100),
        rpm_limit=10_000,
        tpm_limit=10**9,
        max_parallel_requests=50,
    )
    from apps.keys.models import VirtualKey
    from apps.teams.models import EndUser, GatewayUser, TeamMembership

    user = GatewayUser.objects.create(user_id="u", max_budget=Decimal(100), rpm_limit=10_000)
    TeamMembership.objects.create(team=team, user=user, max_budget=Decimal(100))
    VirtualKey.objects.update(user=user)
    EndUser.objects.create(user_id="cust", max_budget=Decimal(100), rpm_limit=10_000)
    client = openai_client(key)
    settle_change_poll()
    queries.take()
    for end_user in ("cust", "unknown"):
        client.chat.completions.create(model="gpt", messages=HELLO, user=end_user)
    assert any("keys_virtualkey" in sql for sql in queries.take())
    for _ in range(5):
        for end_user in ("cust", "unknown"):
            raw = client.chat.completions.with_raw_response.create(
                model="gpt", messages=HELLO, user=end_user
            )
            assert raw.headers["x-ratelimit-limit-requests"] == "10000"
            stream = client.chat.completions.create(
                model="gpt", messages=HELLO, stream=True, user=end_user
            )
            list(stream)
    assert queries.take() == []
