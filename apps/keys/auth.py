"""Authenticate a bearer token into a :class:`Principal`, with no DB query once warm.

Keys are looked up by digest and cached per process; the cache is cleared whenever keys, teams
or the proxy config change (see ``apps.core.changes``) and entries also expire after
``GATEWAY_CACHE_TTL_S``. Unknown tokens are cached briefly too, so a flood of bad keys does not
become a flood of queries.
"""

from __future__ import annotations

import dataclasses
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models import Q

from apps.core import changes, clock
from apps.core.cache import MISSING, GenerationCache
from apps.core.conf import conf
from apps.core.db import db_task
from apps.core.errors import AuthenticationError, PermissionDenied
from apps.core.models import ProxyConfig
from apps.core.secrets import resolve
from apps.keys import hashing
from apps.keys.models import VirtualKey
from apps.keys.scopes import Scope, scope_of
from apps.teams.models import Organization, TeamMembership

_NEGATIVE_TTL_S = 10.0


@dataclass(frozen=True, slots=True)
class ModelRule:
    """The models one level (key, team, organization) allows: model-group names, access
    groups (a tag set on model groups) and wildcards such as ``openai/*``."""

    names: frozenset[str]
    patterns: tuple[str, ...] = ()

    @classmethod
    def of(cls, values: list[str] | None) -> ModelRule | None:
        """None when the level does not restrict: ``[]`` (what the levels above allow),
        ``["*"]`` or ``["all-proxy-models"]`` (anything the gateway routes)."""
        if not values or not isinstance(values, list):
            return None
        entries = [str(v) for v in values]
        if "*" in entries or "all-proxy-models" in entries:
            return None
        return cls(names=frozenset(entries), patterns=tuple(e for e in entries if "*" in e))

    def allows(self, model: str, access_groups: Iterable[str] = ()) -> bool:
        if model in self.names:
            return True
        if any(group in self.names for group in access_groups):
            return True
        return any(fnmatch.fnmatchcase(model, pattern) for pattern in self.patterns)


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``allowed_models`` None means every model group; decisions go through
    ``model_rules`` (every level must allow a model) when set."""

    key_id: int | None
    is_master: bool = False
    key_alias: str = ""
    team_id: int | None = None
    team_alias: str = ""
    organization_id: int | None = None
    user_id: str = ""
    allowed_models: frozenset[str] | None = None
    model_rules: tuple[ModelRule, ...] = ()
    max_budget: Decimal | None = None
    rpm_limit: int | None = None
    tpm_limit: int | None = None
    max_parallel_requests: int | None = None
    expires_at: datetime | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    # Every level that limits this caller's calls (key, team, organization, user...).
    scopes: tuple[Scope, ...] = ()
    # "key", "team" or "organization" when blocked: the caller is known, and refused.
    blocked: str = ""
    # Model names this caller may send in place of a model group's (the team's
    # ``model_aliases``, then the key's own ``aliases`` over them): {name: model group}.
    aliases: dict[str, str] = field(default_factory=dict)

    def may_use(self, model_group: str, access_groups: Iterable[str] = ()) -> bool:
        if self.model_rules:
            return all(rule.allows(model_group, access_groups) for rule in self.model_rules)
        return self.allowed_models is None or model_group in self.allowed_models

    def check_model(self, model_group: str) -> None:
        if not self.may_use(model_group):
            raise PermissionDenied(
                f"This key is not allowed to use model '{model_group}'.", param="model"
            )


MASTER = Principal(key_id=None, is_master=True, key_alias="master")

# Key digest -> its principal (None: no such key, remembered briefly).
_principals: GenerationCache[str, Principal | None] = GenerationCache(
    ttl=lambda principal: conf.GATEWAY_CACHE_TTL_S if principal else _NEGATIVE_TTL_S,
    max_size=lambda: int(conf.GATEWAY_KEY_CACHE_SIZE),
)
# One entry: the digests of the master keys.
_masters: GenerationCache[None, frozenset[str]] = GenerationCache(
    ttl=lambda _digests: float(conf.GATEWAY_CACHE_TTL_S)
)


def clear_cache() -> None:
    _principals.clear()
    _masters.clear()


changes.subscribe(changes.TOPIC_KEYS, clear_cache)


def _intersect(*lists: list[str] | None) -> frozenset[str] | None:
    result: frozenset[str] | None = None
    for values in lists:
        if not values:
            continue
        if "all-proxy-models" in values or "*" in values:
            continue
        current = frozenset(values)
        result = current if result is None else result & current
    return result


def _organization_of(key: VirtualKey) -> Organization | None:
    if key.team is not None and key.team.organization is not None:
        return key.team.organization
    return key.organization


def _scopes_of(key: VirtualKey) -> tuple[Scope, ...]:
    """Every level limiting the key's calls: the key, its team, organization, user and the
    user's membership of the team (loaded with the key, plus one query for the membership)."""
    team = key.team
    org = _organization_of(key)
    user = key.user
    membership = (
        TeamMembership.objects.select_related("budget").filter(team=team, user=user).first()
        if team is not None and user is not None
        else None
    )
    found = [
        scope_of("key", str(key.pk), key),
        scope_of("team", str(team.pk), team) if team else None,
        scope_of("organization", str(org.pk), org) if org else None,
        scope_of("user", str(user.pk), user) if user else None,
        scope_of("team member", str(membership.pk), membership) if membership else None,
    ]
    return tuple(s for s in found if s is not None)


def _principal_for(key: VirtualKey) -> Principal:
    team = key.team
    org = _organization_of(key)
    return Principal(
        key_id=key.pk,
        key_alias=key.key_alias,
        team_id=team.pk if team else None,
        team_alias=team.team_alias if team else "",
        organization_id=org.pk if org else None,
        user_id=key.user.user_id if key.user else "",
        allowed_models=_intersect(
            key.allowed_models,
            team.allowed_models if team else None,
            org.allowed_models if org else None,
        ),
        model_rules=tuple(
            rule
            for rule in (
                ModelRule.of(key.allowed_models),
                ModelRule.of(team.allowed_models) if team else None,
                ModelRule.of(org.allowed_models) if org else None,
            )
            if rule is not None
        ),
        max_budget=key.max_budget,
        rpm_limit=key.rpm_limit,
        tpm_limit=key.tpm_limit,
        max_parallel_requests=key.max_parallel_requests,
        expires_at=key.expires_at,
        metadata=dict(key.metadata or {}),
        scopes=_scopes_of(key),
        aliases=_aliases(team.model_aliases if team else None, key.aliases),
    )


def _aliases(*levels: object) -> dict[str, str]:
    """The alias maps of each level merged, later levels winning; entries that are not
    ``{str: str}`` are left out (the admin's JSON field accepts anything)."""
    merged: dict[str, str] = {}
    for level in levels:
        if isinstance(level, dict):
            merged.update(
                (k, v) for k, v in level.items() if isinstance(k, str) and isinstance(v, str) and v
            )
    return merged


_RELATED = (
    "budget",
    "team",
    "team__budget",
    "team__organization",
    "team__organization__budget",
    "organization",
    "organization__budget",
    "user",
    "user__budget",
)


def _load_key(digest: str) -> Principal | None:
    now = clock.now()
    key = (
        VirtualKey.objects.select_related(*_RELATED)
        .filter(Q(digest=digest) | Q(previous_digest=digest, previous_digest_expires_at__gt=now))
        .first()
    )
    if key is None:
        return None
    principal = _principal_for(key)
    # The secret before a regeneration works until its grace period ends.
    until = key.previous_digest_expires_at
    if (
        key.digest != digest
        and until is not None
        and (principal.expires_at is None or until < principal.expires_at)
    ):
        principal = dataclasses.replace(principal, expires_at=until)
    if key.blocked:
        return dataclasses.replace(principal, blocked="key")
    if key.team is not None and key.team.blocked:
        return dataclasses.replace(principal, blocked="team")
    org = _organization_of(key)
    if org is not None and org.blocked:
        return dataclasses.replace(principal, blocked="organization")
    return principal


def _load_master_digests() -> frozenset[str]:
    digests = set()
    if conf.PROXY_MASTER_KEY:
        digests.add(hashing.digest(conf.PROXY_MASTER_KEY))
    config = ProxyConfig.objects.filter(pk=1).first()
    if config is not None:
        if config.master_key_ref:
            value = resolve(config.master_key_ref)
            if value:
                digests.add(hashing.digest(value))
        elif config.master_key_digest:
            digests.add(config.master_key_digest)
    return frozenset(digests)


_aload_key = db_task(_load_key)
_aload_master = db_task(_load_master_digests)


def bearer_token(value: str | None) -> str | None:
    """The token of an ``Authorization`` header value (``Bearer x`` or a bare key)."""
    if not value:
        return None
    value = value.strip()
    if value[:7].lower() == "bearer ":
        value = value[7:].strip()
    return value or None


async def authenticate(token: str | None) -> Principal:
    """Return the caller for ``token`` (a raw key). Raises AuthenticationError."""
    if not token:
        raise AuthenticationError(
            "Missing API key. Pass it as 'Authorization: Bearer sk-...'.", code="missing_api_key"
        )
    key_digest = hashing.digest(token)
    principal = _principals.get(key_digest)
    if principal is MISSING:

        async def load() -> Principal | None:
            masters = await _masters.get_or_load(None, _aload_master)
            return MASTER if key_digest in masters else await _aload_key(key_digest)

        principal = await _principals.get_or_load(key_digest, load)
    if principal is None:
        raise AuthenticationError("Invalid API key.")
    if principal.blocked:
        _refuse_blocked(principal)
    if principal.expires_at is not None and principal.expires_at <= clock.now():
        raise AuthenticationError("This API key has expired.", code="expired_api_key")
    return principal


def _refuse_blocked(principal: Principal) -> None:
    if principal.blocked == "key":
        raise AuthenticationError(
            "This API key is blocked. A proxy admin can unblock it with /key/unblock.",
            code="key_blocked",
        )
    # 401 like LiteLLM, whose clients treat a blocked team as an authentication failure.
    level = principal.blocked
    route = "/team/unblock" if level == "team" else "/organization/update"
    raise AuthenticationError(
        f"This key's {level} is blocked. A proxy admin can unblock it with {route}.",
        code=f"{level}_blocked",
    )
