"""The management half of the tenancy story, over HTTP through the running gateway: an admin
sets up an organization, a team with a monthly budget and two models, and a team admin, who
issues a key for one model; the key works for that model only, and the audit log shows it all."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai
import pytest

from apps.core.models import AuditLog
from apps.teams.models import Team


def test_admin_sets_up_a_team_and_its_admin_issues_a_one_model_key(
    gateway_http: Any, openai_upstream: Any, openai_client: Any
) -> None:
    openai_upstream("gpt-a")
    openai_upstream("gpt-b")
    org = gateway_http.post("/organization/new", json={"organization_alias": "acme"}).json()
    team = gateway_http.post(
        "/team/new",
        json={
            "team_alias": "research",
            "organization_id": org["organization_id"],
            "max_budget": 10,
            "budget_duration": "1mo",
            "models": ["gpt-a", "gpt-b"],
        },
    ).json()
    lead = gateway_http.post(
        "/user/new", json={"user_email": "lead@example.com", "auto_create_key": True}
    ).json()
    added = gateway_http.post(
        "/team/member_add",
        json={"team_id": team["team_id"], "member": {"user_id": lead["user_id"], "role": "admin"}},
    )
    assert added.status_code == 200
    as_lead = {"authorization": f"Bearer {lead['key']}"}
    issued = gateway_http.post(
        "/key/generate",
        json={"team_id": team["team_id"], "models": ["gpt-a"], "rpm_limit": 60},
        headers=as_lead,
    )
    assert issued.status_code == 200, issued.json()
    stored = Team.objects.get(team_id=team["team_id"])
    assert stored.max_budget == Decimal(10) and stored.budget_reset_at is not None

    client = openai_client(issued.json()["key"])
    reply = client.chat.completions.create(
        model="gpt-a", messages=[{"role": "user", "content": "hi"}]
    )
    assert reply.choices[0].message.content
    with pytest.raises(openai.PermissionDeniedError):
        client.chat.completions.create(model="gpt-b", messages=[{"role": "user", "content": "hi"}])

    steps = list(AuditLog.objects.order_by("pk").values_list("actor", "action", "object_type"))
    assert ("master", "created", "organization") in steps
    assert ("master", "created", "team") in steps
    assert ("master", "created", "gatewayuser") in steps
    assert ("master", "created", "teammembership") in steps
    lead_label = f"key:{lead['key_name']}"
    assert (lead_label, "created", "virtualkey") in steps
    assert issued.json()["key"] not in str(list(AuditLog.objects.values("before", "after")))
