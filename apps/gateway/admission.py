"""The gateway's side of limits and budgets: admit a call before routing, settle it after.

Kept apart from the pipeline so that every client-facing handler (OpenAI, Anthropic, Azure
shapes) applies the same checks through :func:`admit` and :func:`settle_soon`.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

from apps.gateway.call import Call
from apps.keys import limits
from apps.keys.end_users import end_user
from apps.routing.selectors import check_access

logger = logging.getLogger(__name__)

_pending: set[asyncio.Task[None]] = set()


async def admit(call: Call) -> None:
    """Check the caller's limits and budgets for this call. Raises RateLimited or
    BudgetExceeded (with their headers) when one is spent."""
    principal = call.principal
    request = call.request
    assert principal is not None and request is not None
    body = request.body
    model = body.get("model")
    model = model if isinstance(model, str) else ""
    scopes = principal.scopes
    if principal.model_rules:
        await check_access(principal=principal, model=model)
    user = body.get("user")
    customer = await end_user(user) if isinstance(user, str) else None
    if customer is not None:
        call.region = customer.allowed_model_region
        call.default_model = customer.default_model
        if customer.scope is not None:
            scopes = (*scopes, customer.scope)
    if not scopes:
        return
    call.admission = await limits.admit(scopes=scopes, model=model)


async def _settle(admission: limits.Admission, tokens: int, cost: Decimal) -> None:
    try:
        await limits.settle(admission, tokens=tokens, cost=cost)
    except Exception:  # counters must never take a request down, not even after it
        logger.exception("could not settle the limits of a call")


def settle_soon(call: Call, cost: Decimal) -> None:
    """Release the call's slots and charge its tokens and cost, after the response (the
    client does not wait for it)."""
    admission = call.admission
    if admission is None or admission.settled:
        return
    tokens = call.usage.total_tokens if call.usage is not None else 0
    task = asyncio.get_running_loop().create_task(_settle(admission, tokens, cost))
    _pending.add(task)
    task.add_done_callback(_pending.discard)


async def drain() -> None:
    """Wait for the settlements still running (shutdown, tests)."""
    while _pending:
        await asyncio.gather(*list(_pending), return_exceptions=True)
