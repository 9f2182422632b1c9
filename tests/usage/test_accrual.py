"""Spend accrual: every holder (key, team, organization, internal user, team membership, end
user) gets each new row's cost, in total and per model, once; writers in parallel never
deadlock."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from django.db import connection, transaction

from apps.keys.models import VirtualKey
from apps.keys.services import key_issue
from apps.teams.models import EndUser, GatewayUser, Organization, Team, TeamMembership
from apps.usage import accrual
from apps.usage.store import write_rows
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)


def _world() -> tuple[VirtualKey, Team, Organization, GatewayUser, TeamMembership]:
    org = Organization.objects.create(organization_id="org-1")
    team = Team.objects.create(team_id="team-1", organization=org)
    user = GatewayUser.objects.create(user_id="alice")
    membership = TeamMembership.objects.create(team=team, user=user)
    key, _ = key_issue(team=team, user=user)
    return key, team, org, user, membership


def _rows(key: VirtualKey, team: Team, org: Organization, start: int = 0) -> list[dict]:
    return [
        full_row(
            start + n,
            key_id=key.pk,
            team_id=team.pk,
            organization_id=org.pk,
            user_id="alice",
            end_user=f"cust-{n % 2}",
            model_group=("gpt", "claude")[n % 2],
            cost=Decimal("0.125") * (n + 1),
        )
        for n in range(4)
    ]


def _state(*objs: object) -> list[tuple[Decimal, dict]]:
    out = []
    for obj in objs:
        obj.refresh_from_db()  # type: ignore[attr-defined]
        out.append((obj.spend, {m: Decimal(str(v)) for m, v in obj.model_spend.items()}))  # type: ignore[attr-defined]
    return out


def test_every_holder_gets_the_cost_in_total_and_per_model():
    key, team, org, user, membership = _world()
    rows = _rows(key, team, org)
    write_rows(rows)
    # gpt: 0.125 + 0.375; claude: 0.25 + 0.5.
    expected = (Decimal("1.25"), {"gpt": Decimal("0.5"), "claude": Decimal("0.75")})
    assert _state(key, team, org, user, membership) == [expected] * 5
    # End users appear the first time they spend.
    cust0, cust1 = EndUser.objects.order_by("user_id")
    assert (cust0.user_id, cust0.spend, cust1.spend) == ("cust-0", Decimal("0.5"), Decimal("0.75"))
    # A replay adds nothing; new rows add on.
    write_rows(rows)
    write_rows(_rows(key, team, org, start=100)[:1])
    assert _state(key)[0] == (
        Decimal("1.375"),
        {"gpt": Decimal("0.625"), "claude": Decimal("0.75")},
    )


def test_the_portable_accrual_equals_the_database_one():
    key, team, org, user, membership = _world()
    rows = _rows(key, team, org)
    write_rows(rows)
    by_sql = _state(key, team, org, user, membership)
    for model in (VirtualKey, Team, Organization, GatewayUser, TeamMembership, EndUser):
        model.objects.update(spend=0, model_spend={})
    with transaction.atomic():
        accrual.apply(rows)
    assert _state(key, team, org, user, membership) == by_sql


def test_parallel_writers_touching_the_same_holders_never_deadlock():
    key, team, org, _user, _membership = _world()
    other, _ = key_issue(team=team)
    errors: list[BaseException] = []

    def writer(first: VirtualKey, second: VirtualKey, base: int) -> None:
        try:
            for batch in range(15):
                n = base + batch * 10
                write_rows(
                    [
                        full_row(
                            n,
                            key_id=first.pk,
                            team_id=team.pk,
                            organization_id=org.pk,
                            user_id="alice",
                            cost=Decimal("0.01"),
                        ),
                        full_row(
                            n + 1,
                            key_id=second.pk,
                            team_id=team.pk,
                            organization_id=org.pk,
                            user_id="alice",
                            cost=Decimal("0.01"),
                        ),
                    ]
                )
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=writer, args=(key, other, 0)),
        threading.Thread(target=writer, args=(other, key, 100_000)),
        threading.Thread(target=writer, args=(key, other, 200_000)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors
    team.refresh_from_db()
    assert team.spend == Decimal("0.01") * 2 * 15 * 3


def test_an_end_user_deleted_and_seen_again_gets_its_spend():
    """Regression: the writer remembered per process which end users it had created, so one
    deleted meanwhile (``/customer/delete``, or another process) never got a row again and
    its spend went nowhere."""
    key, team, org, _user, _membership = _world()
    write_rows(_rows(key, team, org)[:1])
    EndUser.objects.filter(user_id="cust-0").delete()
    write_rows(_rows(key, team, org, start=10)[:1])
    assert EndUser.objects.get(user_id="cust-0").spend == Decimal("0.125")
