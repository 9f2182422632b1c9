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
from apps.gateway import client_credentials, tokens, upstream
from apps.gateway.call import Call, response_id_of, scrub
from apps.providers.base import Provider, SupportsNative
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Result, Target, UpstreamRequest
from apps.routing.selectors import Candidate, candidates_for
from apps.usage.services import request_cost

T = TypeVar("T")


async def _route(call: Call) -> list[Candidate]:
    assert call.request is not None and call.principal is not None
    model = call.request.body["model"]
    call.group_name = model
    group, candidates = await candidates_for(principal=call.principal, model=model)
    if call.client_credentials is not None:
        candidates = await client_credentials.apply(
            call.client_credentials, group.client_credentials, group.name, candidates
        )
    region = call.region
    if region:
        # An end user held to a region: only that region's deployments, else its default model.
        candidates = [c for c in candidates if c.region == region]
        if not candidates and call.default_model and call.default_model != model:
            call.group_name = call.default_model
            group, others = await candidates_for(principal=call.principal, model=call.default_model)
            if call.client_credentials is not None:
                others = await client_credentials.apply(
                    call.client_credentials, group.client_credentials, group.name, others
                )
            candidates = [c for c in others if c.region == region]
        if not candidates:
            raise UpstreamError(
                f"No deployment in region '{region}' serves '{model}'.", retryable=False
            )
    if not candidates:
        raise UpstreamError(f"No deployment serves '{model}'.", retryable=False)
    return candidates


async def attempts(call: Call, attempt: Callable[[Candidate, Provider], Awaitable[T]]) -> T:
    """Try each candidate in order; move on only after a retryable upstream error, and only
    while nothing was sent to the client."""
    candidates = await _route(call)
    last: UpstreamError | None = None
    for candidate in candidates:
        call.candidate = candidate
        provider = get_provider(candidate.target.provider)
        try:
            return await attempt(candidate, provider)
        except UpstreamError as err:
            err.message = scrub(err.message, candidate.target)
            last = err
            if not err.retryable or call.headers_sent:
                raise
    assert last is not None
    raise last


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
