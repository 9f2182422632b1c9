from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction

from apps.keys import hashing
from apps.keys.models import VirtualKey
from apps.teams.models import GatewayUser, Team


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
) -> tuple[VirtualKey, str]:
    """Create a key. Returns the row and the raw key, which is shown once and never stored.

    ``user_id`` names the owning internal user, created when it does not exist yet (as LiteLLM
    does); ``user`` passes the row itself. ``raw_key`` lets an admin import an existing key (it
    must start with ``sk-``).
    """
    raw = raw_key or hashing.make_key()
    if not raw.startswith(hashing.KEY_PREFIX) or len(raw) < 8:
        raise ValueError("a key must start with 'sk-' and be at least 8 characters long")
    if user is None and user_id:
        user, _ = GatewayUser.objects.get_or_create(user_id=user_id)
    key = VirtualKey.objects.create(
        digest=hashing.digest(raw),
        key_display=hashing.display(raw),
        key_alias=key_alias,
        team=team,
        allowed_models=list(models or []),
        max_budget=max_budget,
        rpm_limit=rpm_limit,
        tpm_limit=tpm_limit,
        max_parallel_requests=max_parallel_requests,
        expires_at=expires_at,
        metadata=metadata or {},
        user=user,
    )
    return key, raw


def key_block(*, key: VirtualKey, blocked: bool = True) -> VirtualKey:
    key.blocked = blocked
    key.save(update_fields=["blocked", "updated_at"])
    return key


def key_regenerate(*, key: VirtualKey) -> tuple[VirtualKey, str]:
    """Replace the secret of a key, keeping its settings; the old secret stops working."""
    raw = hashing.make_key()
    key.digest = hashing.digest(raw)
    key.key_display = hashing.display(raw)
    key.save(update_fields=["digest", "key_display", "updated_at"])
    return key, raw


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
