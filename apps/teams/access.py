"""The one answer to "may this principal act on that object", for the management API and the
admin alike.

An :class:`Actor` is who calls the management API or opens an admin page: the master key, a
virtual key (acting as its internal user, if it has one), or a Django session (acting as the
internal user linked to that login). Roles:

- proxy admin (master key, Django superuser, ``user_role=proxy_admin``): everything;
- proxy admin viewer: reads everything, changes nothing;
- org admin: the organizations where the user is ``org_admin``, their teams, members and keys;
- team admin: the teams where the user is ``admin``, their members and keys;
- team member: reads the team, creates, reads and changes their own keys in it;
- team viewer / ``internal_user_viewer``: reads the team and their own keys;
- a virtual key without a user: reads itself only.

Objects the actor may not read are refused as if they were forbidden (403), unknown ids are
404: the API decides which; this module only answers yes or no and scopes querysets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from django.db.models import Q, QuerySet

from apps.teams.models import (
    Budget,
    EndUser,
    GatewayUser,
    Organization,
    OrganizationMembership,
    OrganizationRole,
    Team,
    TeamMembership,
    TeamRole,
    UserRole,
)

Action = Literal["view", "change", "delete"]

READ_ONLY_ROLES = frozenset({UserRole.PROXY_ADMIN_VIEWER, UserRole.INTERNAL_USER_VIEWER})


@dataclass
class Actor:
    """Who acts. ``label`` names them in the audit log (never a secret)."""

    kind: Literal["master", "key", "session"]
    label: str
    user: GatewayUser | None = None
    key: Any = None  # the VirtualKey used, when kind == "key"
    django_user: Any = None
    is_superuser: bool = False
    team_roles: dict[int, str] = field(default_factory=dict)
    org_roles: dict[int, str] = field(default_factory=dict)

    # DRF and Django treat the request's user as signed in through this.
    is_authenticated = True
    is_anonymous = False

    @property
    def is_proxy_admin(self) -> bool:
        return (
            self.kind == "master"
            or self.is_superuser
            or (self.user is not None and self.user.user_role == UserRole.PROXY_ADMIN)
        )

    @property
    def is_proxy_viewer(self) -> bool:
        return self.is_proxy_admin or (
            self.user is not None and self.user.user_role == UserRole.PROXY_ADMIN_VIEWER
        )

    @property
    def read_only(self) -> bool:
        return not self.is_proxy_admin and (
            self.user is None or self.user.user_role in READ_ONLY_ROLES
        )

    def admin_org_ids(self) -> set[int]:
        return {pk for pk, role in self.org_roles.items() if role == OrganizationRole.ORG_ADMIN}

    def admin_team_ids(self) -> set[int]:
        return {pk for pk, role in self.team_roles.items() if role == TeamRole.ADMIN}

    def writer_team_ids(self) -> set[int]:
        """Teams where the actor may create and change their own keys."""
        if self.read_only:
            return set()
        return {pk for pk, role in self.team_roles.items() if role != TeamRole.VIEWER}


def actor_for_user(
    user: GatewayUser | None,
    *,
    kind: Literal["key", "session"],
    label: str,
    key: Any = None,
    django_user: Any = None,
) -> Actor:
    """Build an actor with the memberships of ``user`` (two queries)."""
    actor = Actor(
        kind=kind,
        label=label,
        user=user,
        key=key,
        django_user=django_user,
        is_superuser=bool(django_user is not None and django_user.is_superuser),
    )
    if user is not None:
        actor.team_roles = dict(
            TeamMembership.objects.filter(user=user).values_list("team_id", "role")
        )
        actor.org_roles = dict(
            OrganizationMembership.objects.filter(user=user).values_list("organization_id", "role")
        )
    return actor


def actor_for_login(django_user: Any) -> Actor:
    """The actor of a Django session: the internal user linked to the login, if any."""
    user = GatewayUser.objects.filter(auth_user=django_user).first()
    return actor_for_user(
        user,
        kind="session",
        label=f"admin:{django_user.get_username()}",
        django_user=django_user,
    )


# --- querysets -------------------------------------------------------------------------------


def organizations(actor: Actor, qs: QuerySet[Organization] | None = None) -> QuerySet[Organization]:
    qs = Organization.objects.all() if qs is None else qs
    if actor.is_proxy_viewer:
        return qs
    return qs.filter(pk__in=set(actor.org_roles))


def teams(actor: Actor, qs: QuerySet[Team] | None = None) -> QuerySet[Team]:
    qs = Team.objects.all() if qs is None else qs
    if actor.is_proxy_viewer:
        return qs
    return qs.filter(Q(pk__in=set(actor.team_roles)) | Q(organization__in=actor.admin_org_ids()))


def users(actor: Actor, qs: QuerySet[GatewayUser] | None = None) -> QuerySet[GatewayUser]:
    qs = GatewayUser.objects.all() if qs is None else qs
    if actor.is_proxy_viewer:
        return qs
    mine = Q(pk=actor.user.pk) if actor.user is not None else Q(pk__in=[])
    return qs.filter(
        mine
        | Q(team_memberships__team__in=actor.admin_team_ids())
        | Q(organization_memberships__organization__in=actor.admin_org_ids())
        | Q(team_memberships__team__organization__in=actor.admin_org_ids())
    ).distinct()


def keys(actor: Actor, qs: QuerySet[Any]) -> QuerySet[Any]:
    """Scope a VirtualKey queryset to what the actor may read."""
    if actor.is_proxy_viewer:
        return qs
    allowed = Q(pk__in=[])
    if actor.key is not None:
        allowed |= Q(pk=actor.key.pk)
    if actor.user is not None:
        allowed |= Q(user=actor.user)
    orgs = actor.admin_org_ids()
    allowed |= Q(team__in=actor.admin_team_ids()) | Q(team__organization__in=orgs)
    allowed |= Q(organization__in=orgs)
    return qs.filter(allowed)


# --- single objects --------------------------------------------------------------------------


def _org_admin(actor: Actor, org_id: int | None) -> bool:
    return org_id is not None and org_id in actor.admin_org_ids()


def _team_admin(actor: Actor, team: Team | None) -> bool:
    if team is None:
        return False
    return team.pk in actor.admin_team_ids() or _org_admin(actor, team.organization_id)


def administers_team(actor: Actor, team: Team | None) -> bool:
    """Proxy admins, the team's admins and the admins of its organization."""
    return actor.is_proxy_admin or _team_admin(actor, team)


def may_team(actor: Actor, action: Action, team: Team) -> bool:
    if actor.is_proxy_admin:
        return True
    if action == "view":
        return actor.is_proxy_viewer or team.pk in actor.team_roles or _team_admin(actor, team)
    if actor.read_only:
        return False
    if action == "delete":
        return _org_admin(actor, team.organization_id)
    return _team_admin(actor, team)


def may_organization(actor: Actor, action: Action, org: Organization) -> bool:
    if actor.is_proxy_admin:
        return True
    if action == "view":
        return actor.is_proxy_viewer or org.pk in actor.org_roles
    return action == "change" and not actor.read_only and _org_admin(actor, org.pk)


def may_key(actor: Actor, action: Action, key: Any) -> bool:
    if actor.is_proxy_admin:
        return True
    team: Team | None = key.team
    admin = _team_admin(actor, team) or _org_admin(actor, key.organization_id)
    own = actor.user is not None and key.user_id == actor.user.pk
    if action == "view":
        itself = actor.key is not None and actor.key.pk == key.pk
        return actor.is_proxy_viewer or admin or own or itself
    if actor.read_only:
        return False
    if admin:
        return True
    # Members change their own keys, in a team where they may write (or with no team).
    return own and (team is None or team.pk in actor.writer_team_ids())


def may_create_key(actor: Actor, *, team: Team | None, for_user: GatewayUser | None) -> bool:
    """May the actor issue a key in ``team`` owned by ``for_user``?"""
    if actor.is_proxy_admin:
        return True
    if actor.read_only or actor.user is None:
        return False
    if team is not None and _team_admin(actor, team):
        return True
    own = for_user is None or for_user.pk == actor.user.pk
    return own and (team is None or team.pk in actor.writer_team_ids())


def may_user(actor: Actor, action: Action, user: GatewayUser) -> bool:
    if actor.is_proxy_admin:
        return True
    if action == "view":
        return actor.is_proxy_viewer or users(actor).filter(pk=user.pk).exists()
    if actor.read_only or action == "delete":
        return False
    # Org admins change the users of their organizations (not the users' roles: see the API).
    return (
        OrganizationMembership.objects.filter(
            user=user, organization__in=actor.admin_org_ids()
        ).exists()
        or TeamMembership.objects.filter(
            user=user, team__organization__in=actor.admin_org_ids()
        ).exists()
    )


def may_add_member(
    actor: Actor, *, user_id: str | None, user_email: str | None, organization_id: int | None
) -> bool:
    """May the actor make the user so named a member (of a team or of an organization)?

    New users may always be added (they are created). An existing user only by someone who
    can already see them, or into the organization they already belong to: otherwise adding
    them would hand another tenant's user over to the actor."""
    if actor.is_proxy_admin:
        return True
    if user_id:
        user = GatewayUser.objects.filter(user_id=user_id).first()
    else:
        user = GatewayUser.objects.filter(user_email__iexact=user_email).order_by("pk").first()
    if user is None or users(actor).filter(pk=user.pk).exists():
        return True
    if organization_id is None:
        return False
    return (
        OrganizationMembership.objects.filter(user=user, organization_id=organization_id).exists()
        or TeamMembership.objects.filter(user=user, team__organization_id=organization_id).exists()
    )


def may_proxy_object(actor: Actor, action: Action, obj: EndUser | Budget | Any) -> bool:
    """End users, budgets and models: proxy admins change them, proxy viewers read them."""
    return actor.is_proxy_admin or (action == "view" and actor.is_proxy_viewer)


def may(actor: Actor, action: Action, obj: Any) -> bool:
    """Dispatch on the object's model."""
    if isinstance(obj, Team):
        return may_team(actor, action, obj)
    if isinstance(obj, Organization):
        return may_organization(actor, action, obj)
    if isinstance(obj, GatewayUser):
        return may_user(actor, action, obj)
    if isinstance(obj, TeamMembership):
        return may_team(actor, "view" if action == "view" else "change", obj.team)
    if isinstance(obj, OrganizationMembership):
        if action == "view":
            return may_organization(actor, "view", obj.organization)
        return may_organization(actor, "change", obj.organization)
    if obj._meta.model_name == "virtualkey":
        return may_key(actor, action, obj)
    return may_proxy_object(actor, action, obj)
