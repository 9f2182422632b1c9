"""The request pipeline: authenticated call -> routing -> provider attempts -> answer.

Knows the order of steps; knows nothing of any one provider or client format. Streamed answers
are relayed by ``streaming``; this module holds what both kinds of answer share (routing, the
fallback loop, building the upstream request) and the complete (non-stream) answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TypeVar

from apps.core.errors import UpstreamError
from apps.gateway import tokens, upstream
from apps.gateway.attempts import run_attempts
from apps.gateway.call import Call, response_id_of, scrub
from apps.providers.base import Provider, SupportsNative
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Result, Target, UpstreamRequest
from apps.routing.selectors import Candidate
from apps.usage.services import request_cost

T = TypeVar("T")


async def attempts(call: Call, attempt: Callable[[Candidate, Provider], Awaitable[T]]) -> T:
    """The requested group's deployments with retries, then its fallback groups, while
    nothing was sent to the client (``apps.gateway.attempts``)."""
    result: T = await run_attempts(call, attempt, scrub)
    return result


def native_of(provider: Provider, request: CanonicalRequest) -> SupportsNative | None:
    """The provider's native side when the client's own format is the provider's (the
    client's body then goes upstream untranslated); None otherwise."""
    if request.native is None:
        return None
    native = provider.native
    if native is None or native.native_format != request.native_format:
        return None
    return native


def build_request(provider: Provider, request: CanonicalRequest, target: Target) -> UpstreamRequest:
    native = native_of(provider, request)
    if native is not None:
        assert request.native is not None
        return native.build_native_request(request.native, target, request.client_headers)
    return provider.build_request(request, target)


async def _complete(call: Call, candidate: Candidate, provider: Provider) -> Result:
    request = call.request
    assert request is not None
    target = candidate.target
    local = provider.local
    if local is not None:
        first, _ = local.local_latency_s(target)
        if first:
            await asyncio.sleep(first)
        return local.local_response(request, target)
    target = await tokens.with_token(provider, target)
    req = build_request(provider, request, target)
    resp = await upstream.send(req, target=target)
    if resp.status >= 400:
        raise provider.parse_error(resp.status, resp.body, resp.headers)
    native = native_of(provider, request)
    if native is not None:
        return Result(data={}, usage=native.native_usage(resp.body), raw=resp.body, native=True)
    return provider.parse_response(request, target, resp.body)


async def attempt_one(call: Call, candidate: Candidate) -> Result:
    """One non-stream attempt against one deployment, without fallback (health checks)."""
    try:
        return await _complete(call, candidate, get_provider(candidate.target.provider))
    except UpstreamError as err:
        err.message = scrub(err.message, candidate.target)
        raise


async def run(call: Call) -> Result:
    """A complete (non-stream) answer. Raises GatewayError."""

    async def attempt(candidate: Candidate, provider: Provider) -> Result:
        return await _complete(call, candidate, provider)

    result = await attempts(call, attempt)
    call.usage = result.usage
    own_id = result.data.get("id")
    call.response_id = own_id if isinstance(own_id, str) else response_id_of(result.raw)
    return result


def request_cost_of(call: Call) -> Decimal:
    return request_cost(call.candidate, call.usage)
