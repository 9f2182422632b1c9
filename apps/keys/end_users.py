"""End users (customers): the ``user`` field of a request, looked up and cached like keys.

An end user may be blocked, may carry a budget and rpm/tpm/parallel limits (a :class:`Scope`
of level "end user"), may be held to deployments of one region (``allowed_model_region``) and
may have a ``default_model`` used when a request names none. Unknown ids are cached too (they
are the common case: most callers never register their users), so a warm gateway asks the
database nothing; the cache empties on every tenancy change, like the key cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from apps.core import changes
from apps.core.conf import conf
from apps.core.db import db_task
from apps.core.errors import PermissionDenied
from apps.keys.scopes import Scope, scope_of
from apps.teams.models import EndUser

_MAX_ID = 200


@dataclass(frozen=True, slots=True)
class Customer:
    user_id: str
    blocked: bool = False
    allowed_model_region: str = ""
    default_model: str = ""
    scope: Scope | None = None


_cache: dict[str, tuple[Customer | None, float]] = {}
_generation = 0


def clear_cache() -> None:
    global _generation
    _cache.clear()
    _generation += 1


changes.subscribe(changes.TOPIC_KEYS, clear_cache)


def _load(user_id: str) -> Customer | None:
    row = EndUser.objects.select_related("budget").filter(user_id=user_id).first()
    if row is None:
        return None
    return Customer(
        user_id=row.user_id,
        blocked=row.blocked,
        allowed_model_region=row.allowed_model_region or "",
        default_model=row.default_model or "",
        scope=scope_of("end user", row.user_id, row),
    )


_aload = db_task(_load)


async def end_user(user_id: str | None) -> Customer | None:
    """The registered end user ``user_id`` (None when unknown or not given).

    Raises PermissionDenied for a blocked end user: the key is fine, this customer is not."""
    if not user_id or len(user_id) > _MAX_ID or "\x00" in user_id:
        return None  # no such row can exist (PostgreSQL text cannot even hold NUL)
    now = time.monotonic()
    hit = _cache.get(user_id)
    if hit is None or hit[1] < now:
        generation = _generation
        customer = await _aload(user_id)
        if len(_cache) >= conf.GATEWAY_KEY_CACHE_SIZE:
            _cache.clear()
        hit = (customer, now + conf.GATEWAY_CACHE_TTL_S)
        if generation == _generation:
            _cache[user_id] = hit
    customer = hit[0]
    if customer is not None and customer.blocked:
        raise PermissionDenied(
            f"End user '{user_id}' is blocked. A proxy admin can unblock it with "
            "/customer/unblock.",
            param="user",
            code="end_user_blocked",
        )
    return customer
