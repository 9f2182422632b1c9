"""The people every tenancy test is played with, across two organizations.

Organization A has team A; organization B has team B. Each persona has a key, and the keys of
team members sit in their team. ``call`` sends a management request as one of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rest_framework.test import APIClient

from apps.keys.services import key_issue
from apps.teams.models import (
    GatewayUser,
    Organization,
    OrganizationMembership,
    Team,
    TeamMembership,
)
from tests.conftest import MASTER_KEY

# Personas in the permission matrix, strongest first; "nobody" sends no key.
PERSONAS = (
    "master",
    "proxy_admin",
    "org_admin",
    "team_admin",
    "member",
    "viewer",
    "outsider",
    "nobody",
)


@dataclass
class World:
    org_a: Organization
    org_b: Organization
    team_a: Team
    team_b: Team
    users: dict[str, GatewayUser] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    client: APIClient = field(default_factory=APIClient)

    def call(self, who: str, method: str, path: str, body: Any = None, **params: Any) -> Any:
        headers = {}
        key = MASTER_KEY if who == "master" else self.keys.get(who)
        if key:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        send = getattr(self.client, method.lower())
        if method.upper() == "GET":
            return send(path, params, **headers)
        return send(path, body if body is not None else {}, format="json", **headers)


def build_world() -> World:
    org_a = Organization.objects.create(organization_id="org-a", organization_alias="A")
    org_b = Organization.objects.create(organization_id="org-b", organization_alias="B")
    team_a = Team.objects.create(team_id="team-a", team_alias="research", organization=org_a)
    team_b = Team.objects.create(team_id="team-b", team_alias="research", organization=org_b)
    world = World(org_a=org_a, org_b=org_b, team_a=team_a, team_b=team_b)

    def person(name: str, *, role: str = "internal_user", team: Team | None = None) -> GatewayUser:
        user = GatewayUser.objects.create(
            user_id=name, user_email=f"{name}@example.com", user_role=role
        )
        world.users[name] = user
        world.keys[name] = key_issue(user=user, team=team, key_alias=f"{name}-key")[1]
        return user

    person("proxy_admin", role="proxy_admin")
    person("proxy_viewer", role="proxy_admin_viewer")
    org_admin = person("org_admin")
    OrganizationMembership.objects.create(organization=org_a, user=org_admin, role="org_admin")
    team_admin = person("team_admin", team=team_a)
    TeamMembership.objects.create(team=team_a, user=team_admin, role="admin")
    member = person("member", team=team_a)
    TeamMembership.objects.create(team=team_a, user=member, role="member")
    viewer = person("viewer", role="internal_user_viewer", team=team_a)
    TeamMembership.objects.create(team=team_a, user=viewer, role="viewer")
    outsider = person("outsider", team=team_b)
    TeamMembership.objects.create(team=team_b, user=outsider, role="admin")
    return world


def error_of(response: Any) -> dict[str, Any]:
    """The error object of a response, checking it has the API's shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"message", "type", "param", "code"}, body
    return dict(body["error"])
