"""/spend/logs and /global/spend/*: LiteLLM's shapes, and the management API's rules (a team
sees its own spend only; proxy-wide totals are for proxy admins)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from apps.keys.models import VirtualKey
from apps.usage.store import write_rows
from tests.personas import World, build_world, error_of
from tests.usage.rows import full_row

pytestmark = pytest.mark.django_db(transaction=True)

DAY1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)


@pytest.fixture
def world() -> World:
    world = build_world()
    rows = []
    for n, (who, cost, model, day) in enumerate(
        (
            ("member", "0.5", "gpt", DAY1),
            ("member", "0.25", "claude", DAY2),
            ("team_admin", "1", "gpt", DAY2),
            ("outsider", "2", "gpt", DAY1),
            ("proxy_admin", "4", "claude", DAY1),
        ),
        start=1,
    ):
        key = VirtualKey.objects.select_related("team", "user").get(key_alias=f"{who}-key")
        rows.append(
            full_row(
                n,
                start=day,
                response_id=f"chatcmpl-{who}-{n}",
                key_id=key.pk,
                key_alias=key.key_alias,
                team_id=key.team_id,
                organization_id=key.team.organization_id if key.team else None,
                user_id=key.user.user_id if key.user else "",
                model_group=model,
                cost=Decimal(cost),
                metadata={"tags": [who]},
            )
        )
    write_rows(rows)
    return world


def _logs(world: World, who: str, **params: object) -> list[dict]:
    response = world.call(who, "GET", "/spend/logs", **params)
    assert response.status_code == 200, response.content
    return response.json()


def _spend(rows: list[dict]) -> Decimal:
    return sum((Decimal(str(r["spend"])) for r in rows), Decimal(0))


def test_spend_logs_follow_the_access_rules(world):
    assert _spend(_logs(world, "master")) == Decimal("7.75")
    # Team A's admin and members see team A's calls, never team B's or the admin's.
    for who in ("team_admin", "member", "viewer"):
        rows = _logs(world, who)
        assert {r["team_id"] for r in rows} == {"team-a"}, who
        assert _spend(rows) == Decimal("1.75"), who
    assert _spend(_logs(world, "outsider")) == Decimal("2")
    assert world.call("nobody", "GET", "/spend/logs").status_code == 401


def test_a_call_is_found_by_its_own_answer_id_and_by_the_gateways(world):
    [row] = _logs(world, "master", request_id="chatcmpl-member-1")
    assert row["request_id"] == "req-1"
    assert [r["request_id"] for r in _logs(world, "master", request_id="req-1")] == ["req-1"]
    assert _logs(world, "outsider", request_id="chatcmpl-member-1") == []


def test_filters(world):
    member_key = world.keys["member"]
    assert _spend(_logs(world, "master", api_key=member_key)) == Decimal("0.75")
    assert _spend(_logs(world, "master", team_id="team-b")) == Decimal("2")
    assert _spend(_logs(world, "master", user_id="member")) == Decimal("0.75")
    day2 = _logs(world, "master", start_date="2026-11-03", end_date="2026-11-03")
    assert _spend(day2) == Decimal("1.25")
    assert _spend(_logs(world, "master", tags="outsider")) == Decimal("2")
    bad = world.call("master", "GET", "/spend/logs", start_date="yesterday")
    assert bad.status_code == 400 and error_of(bad)["param"] == "start_date"
    missing = world.call("master", "GET", "/spend/logs", team_id="no-such-team")
    assert missing.status_code == 404


def test_a_row_has_litellms_fields_and_never_a_key(world):
    [row] = _logs(world, "master", request_id="req-1")
    for name in (
        "request_id",
        "call_type",
        "api_key",
        "spend",
        "total_tokens",
        "prompt_tokens",
        "completion_tokens",
        "startTime",
        "endTime",
        "model",
        "user",
        "metadata",
        "cache_hit",
        "request_tags",
        "team_id",
        "end_user",
        "model_group",
        "status",
    ):
        assert name in row, name
    key = VirtualKey.objects.get(key_alias="member-key")
    assert row["api_key"] == key.digest  # the token /key/info gives, not the key
    assert world.keys["member"] not in str(row)


def test_csv_export_of_a_range(world):
    response = world.call(
        "master", "GET", "/spend/logs", format="csv", start_date="2026-11-02", end_date="2026-11-02"
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    lines = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted(r["request_id"] for r in lines) == ["req-1", "req-4", "req-5"]
    assert sum(Decimal(r["spend"]) for r in lines) == Decimal("6.5")


def test_global_report_groups_by_team_per_day_with_models(world):
    response = world.call(
        "master",
        "GET",
        "/global/spend/report",
        group_by="team",
        start_date="2026-11-01",
        end_date="2026-11-30",
    )
    assert response.status_code == 200
    days = response.json()
    assert [d["group_by_day"] for d in days] == ["2026-11-02", "2026-11-03"]
    first = {t["team_name"]: t for t in days[0]["teams"]}
    assert first["team-a"]["total_spend"] == 0.5 and first["team-b"]["total_spend"] == 2.0
    assert [m["model"] for m in first["team-a"]["metadata"]] == ["gpt"]
    # A team admin's report holds their team only.
    mine = world.call("team_admin", "GET", "/global/spend/report").json()
    assert {t["team_name"] for d in mine for t in d["teams"]} == {"team-a"}


def test_global_keys_models_and_teams(world):
    keys = world.call("master", "GET", "/global/spend/keys", limit=2).json()
    assert [k["key_alias"] for k in keys] == ["proxy_admin-key", "outsider-key"]
    assert world.keys["proxy_admin"] not in str(keys)
    models = world.call("master", "GET", "/global/spend/models").json()
    assert models == [
        {"model": "claude", "total_spend": 4.25},
        {"model": "gpt", "total_spend": 3.5},
    ]
    refused = world.call("member", "GET", "/global/spend/models")
    assert refused.status_code == 403 and error_of(refused)["type"] == "permission_error"
    teams = world.call("master", "GET", "/global/spend/teams").json()
    assert {t["team_id"]: t["total_spend"] for t in teams["total_spend_per_team"]} == {
        "team-a": 1.75,
        "team-b": 2.0,
    }
    own = world.call("outsider", "GET", "/global/spend/teams").json()
    assert [t["team_id"] for t in own["total_spend_per_team"]] == ["team-b"]
