"""Writes of virtual keys: issue, update, block, regenerate, delete. Each change is audited."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from apps.core import audit
from apps.core.durations import parse_duration
from apps.keys import hashing
from apps.keys.models import VirtualKey
from apps.teams.models import GatewayUser, Team
from apps.teams.services import apply_fields

# Fields a key update may set (besides the owner, team and the secret itself).
KEY_FIELDS = (
    "key_alias",
    "allowed_models",
    "aliases",
    "max_budget",
    "soft_budget",
    "budget_duration",
    "rpm_limit",
    "tpm_limit",
    "max_parallel_requests",
    "model_max_budget",
    "expires_at",
    "blocked",
    "metadata",
    "spend",
)


def expiry_for(duration: str | None, *, now: datetime | None = None) -> datetime | None:
    """``duration`` ("30d", "1h", ...) from now; None or "" means the key never expires."""
    if not duration:
        return None
    return parse_duration(duration).after(now or timezone.now())


def _check_raw(raw: str) -> None:
    if not raw.startswith(hashing.KEY_PREFIX) or len(raw) < 8:
        raise ValueError("a key must start with 'sk-' and be at least 8 characters long")


@transaction.atomic
def key_issue(
    *,
    team: Team | None = None,
    key_alias: str = "",
    models: Iterable[str] | None = None,
    max_budget: Decimal | None = None,
    rpm_limit: int | None = None,
    tpm_limit: int | None = None,
    max_parallel_requests: int | None = None,
    expires_at: datetime | None = None,
    metadata: dict[str, Any] | None = None,
    user: GatewayUser | None = None,
    user_id: str = "",
    raw_key: str | None = None,
    actor: str = "system",
    source: str = "api",
    **limits: Any,
) -> tuple[VirtualKey, str]:
    """Create a key. Returns the row and the raw key, which is shown once and never stored.

    ``user_id`` names the owning internal user, created when it does not exist yet (as LiteLLM
    does); ``user`` passes the row itself. ``raw_key`` lets an admin import an existing key (it
    must start with ``sk-``). ``limits`` are further :data:`KEY_FIELDS` and ``organization`` /
    ``budget`` rows.
    """
    raw = raw_key or hashing.make_key()
    _check_raw(raw)
    if user is None and user_id:
        user, _ = GatewayUser.objects.get_or_create(user_id=user_id)
    key = VirtualKey(
        digest=hashing.digest(raw),
        key_display=hashing.display(raw),
        key_alias=key_alias,
        team=team,
        user=user,
        allowed_models=list(models or []),
        max_budget=max_budget,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_parallel_requests=max_parallel_requests,
        expires_at=expires_at,
        metadata=metadata or {},
        created_by=actor,
        updated_by=actor,
    )
    apply_fields(key, limits, allowed=(*KEY_FIELDS, "organization", "budget"))
    key.save()
    audit.record(actor=actor, source=source, action="created", obj=key, after=audit.snapshot(key))
    return key, raw


@transaction.atomic
def key_update(
    *, key: VirtualKey, changes: dict[str, Any], actor: str = "system", source: str = "api"
) -> VirtualKey:
    """Set ``changes`` (names of :data:`KEY_FIELDS`, ``team``, ``user``, ``organization``,
    ``budget``) on ``key``."""
    before = audit.snapshot(key)
    apply_fields(key, changes, allowed=(*KEY_FIELDS, "team", "user", "organization", "budget"))
    key.updated_by = actor
    key.save()
    audit.record(
        actor=actor,
        source=source,
        action="updated",
        obj=key,
        before=before,
        after=audit.snapshot(key),
    )
    return key


def key_block(
    *, key: VirtualKey, blocked: bool = True, actor: str = "system", source: str = "api"
) -> VirtualKey:
    with transaction.atomic():
        key.blocked = blocked
        key.updated_by = actor
        key.save(update_fields=["blocked", "updated_by", "updated_at"])
        audit.record(
            actor=actor,
            source=source,
            action="blocked" if blocked else "unblocked",
            obj=key,
            before={"blocked": not blocked},
            after={"blocked": blocked},
        )
    return key


def key_regenerate(
    *,
    key: VirtualKey,
    grace_period: str | None = None,
    new_key: str | None = None,
    actor: str = "system",
    source: str = "api",
) -> tuple[VirtualKey, str]:
    """Replace the secret of a key, keeping its settings. Without ``grace_period`` the old
    secret stops working at once; with one ("24h", "2d") it keeps working until then."""
    raw = new_key or hashing.make_key()
    _check_raw(raw)
    grace_until = expiry_for(grace_period) if grace_period else None
    with transaction.atomic():
        if grace_until is not None:
            key.previous_digest = key.digest
            key.previous_digest_expires_at = grace_until
        else:
            key.previous_digest = None
            key.previous_digest_expires_at = None
        key.digest = hashing.digest(raw)
        key.key_display = hashing.display(raw)
        key.updated_by = actor
        key.save(
            update_fields=[
                "digest",
                "key_display",
                "previous_digest",
                "previous_digest_expires_at",
                "updated_by",
                "updated_at",
            ]
        )
        audit.record(
            actor=actor,
            source=source,
            action="regenerated",
            obj=key,
            after={"grace_period": grace_period or "", "old_key_valid_until": grace_until},
        )
    return key, raw


def key_delete(*, key: VirtualKey, actor: str = "system", source: str = "api") -> None:
    with transaction.atomic():
        before = audit.snapshot(key)
        pk = key.pk
        key.delete()
        audit.record(
            actor=actor,
            source=source,
            action="deleted",
            object_type="virtualkey",
            object_id=str(pk),
            before=before,
        )


def grace_left(key: VirtualKey) -> timedelta | None:
    """How long the previous secret still works, if it does."""
    until = key.previous_digest_expires_at
    if key.previous_digest and until is not None and until > timezone.now():
        return until - timezone.now()
    return None


def master_key_ensure(*, configured: str | None) -> str | None:
    """Make sure the gateway has a master key. Returns a new raw key (stored only as a
    digest, shown to the operator once) when neither ``configured`` (the environment's) nor
    the stored proxy config holds one; None otherwise."""
    from apps.core.models import ProxyConfig

    if configured:
        return None
    config, _ = ProxyConfig.objects.get_or_create(pk=1)
    if config.master_key_digest or config.master_key_ref:
        return None
    raw = hashing.make_key()
    config.master_key_digest = hashing.digest(raw)
    config.save(update_fields=["master_key_digest"])
    return raw
