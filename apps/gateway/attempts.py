"""The attempt loop of a call: the requested group's deployments with retries, then its
fallback groups, as ``apps.routing.router`` decides.

A retry goes to another deployment of the group at once when there is one, else waits
(exponential backoff with jitter, or the upstream's ``retry-after``). Nothing is retried once
a byte of the answer reached the client. Gateway-only request fields (``fallbacks``,
``num_retries``, ``mock_testing_*``...) are acted on here; providers never forward them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from apps.core.errors import (
    GatewayError,
    InvalidRequest,
    ModelNotFound,
    UpstreamDisconnected,
    UpstreamError,
    UpstreamProtocolError,
)
from apps.gateway import client_credentials
from apps.providers.registry import get_provider
from apps.routing import shared, state
from apps.routing.policy import (
    CONTENT_POLICY,
    CONTEXT_WINDOW,
    RATE_LIMIT,
    TIMEOUT,
    RequestOptions,
    RouterSettings,
    SettingsError,
    error_class,
    request_options,
)
from apps.routing.router import Plan, estimate_tokens, fallback_groups
from apps.routing.selectors import (
    Candidate,
    Group,
    RoutingTable,
    resolve_group,
    routing_table,
)
from apps.usage.pricing import lookup

if TYPE_CHECKING:
    from apps.gateway.call import Call

Attempt = Callable[[Candidate, Any], Awaitable[Any]]
Scrub = Callable[[str, Any], str]


def price_of(candidate: Candidate) -> float | None:
    """USD per token (input plus output), for cost-based routing."""
    prices = candidate.prices
    target = candidate.target
    listed = lookup(target.provider, candidate.price_model or target.model)
    price_in = prices.input if prices.input is not None else listed.input if listed else None
    price_out = prices.output if prices.output is not None else listed.output if listed else None
    if price_in is None and price_out is None:
        return None
    return float((price_in or 0) + (price_out or 0))


def context_window_error(model: str, tokens: int, limit: int) -> UpstreamError:
    return UpstreamError(
        f"This request needs about {tokens} tokens of context, more than any deployment of "
        f"'{model}' accepts ({limit}).",
        http_status=400,
        type="invalid_request_error",
        code="context_length_exceeded",
        param="messages",
        retryable=False,
    )


def _mock_failure(options: RequestOptions, model: str) -> UpstreamError | None:
    """LiteLLM's ``mock_testing_*`` fields: fail the requested group without calling it, so a
    client can see its fallbacks work."""
    if options.mock_testing_fallbacks:
        return UpstreamError(
            f"This is a mock exception for model={model}, to trigger a fallback.",
            http_status=500,
            code="mock_testing_fallbacks",
        )
    if options.mock_testing_rate_limit_error:
        return UpstreamError(
            f"This is a mock rate limit error for model={model}.",
            http_status=429,
            type="rate_limit_error",
            code="rate_limit_exceeded",
        )
    if options.mock_testing_context_fallbacks:
        return UpstreamError(
            f"This is a mock context window exceeded error for model={model}.",
            http_status=400,
            type="invalid_request_error",
            code="context_length_exceeded",
            retryable=False,
        )
    if options.mock_testing_content_policy_fallbacks:
        return UpstreamError(
            f"This is a mock content policy violation for model={model}.",
            http_status=400,
            type="invalid_request_error",
            code="content_policy_violation",
            retryable=False,
        )
    return None


def maybe_delivered(err: GatewayError) -> bool:
    """The connection failed after the request went out (not a timeout, not an answer): the
    upstream may have read it and started a billed generation, so it is never sent again,
    to this deployment or another."""
    return isinstance(err, UpstreamDisconnected | UpstreamProtocolError) and err.request_sent


def _options(call: Call) -> RequestOptions:
    assert call.request is not None
    try:
        return request_options(call.request.body)
    except SettingsError as exc:
        raise InvalidRequest(str(exc), code="invalid_value") from None


async def _candidates(
    call: Call, table: RoutingTable, model: str, *, check: bool
) -> tuple[Group, list[Candidate]]:
    """A group's deployments, with the client's own provider credentials where the group
    lets clients send them."""
    assert call.principal is not None
    group, candidates = resolve_group(table, call.principal, model, check=check)
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
            group, others = resolve_group(table, call.principal, call.default_model, check=check)
            if call.client_credentials is not None:
                others = await client_credentials.apply(
                    call.client_credentials, group.client_credentials, group.name, others
                )
            candidates = [c for c in others if c.region == region]
        if not candidates:
            raise UpstreamError(
                f"No deployment in region '{region}' serves '{model}'.", retryable=False
            )
    return group, candidates


async def run_attempts(call: Call, attempt: Attempt, scrub: Scrub) -> Any:
    """Run ``attempt`` on the requested group, then on its fallbacks, until one succeeds."""
    request = call.request
    principal = call.principal
    assert request is not None and principal is not None
    options = _options(call)
    table = await routing_table()
    model = request.body["model"]
    call.group_name = model
    group, candidates = await _candidates(call, table, model, check=True)
    for name in (options.fallbacks or ()) + (options.context_window_fallbacks or ()):
        # A key may name only models it may use (PermissionDenied otherwise); one that is not
        # served is skipped when its turn comes.
        with contextlib.suppress(ModelNotFound):
            resolve_group(table, principal, name)
    settings = group.router
    try:
        mock = _mock_failure(options, model)
        if mock is not None:
            raise mock
        # A rate-limited group with nowhere else to go goes to its fallbacks at once, as in
        # LiteLLM, rather than waiting out a retry-after.
        eager = bool(fallback_groups(settings, group.name, options, RATE_LIMIT))
        return await _on_group(
            call, attempt, scrub, group, candidates, settings, options, eager_fallback=eager
        )
    except GatewayError as err:
        if call.headers_sent or maybe_delivered(err):
            raise
        kind = error_class(err)
        chain = fallback_groups(settings, group.name, options, kind)
        if not chain:
            raise
        return await _fallbacks(call, attempt, scrub, table, chain, settings, options, err)


async def _fallbacks(
    call: Call,
    attempt: Attempt,
    scrub: Scrub,
    table: RoutingTable,
    chain: tuple[str, ...],
    settings: RouterSettings,
    options: RequestOptions,
    first: GatewayError,
) -> Any:
    assert call.principal is not None
    last = first
    requested = call.group_name
    for name in chain[: settings.max_fallbacks]:
        try:
            group, candidates = await _candidates(call, table, name, check=False)
        except GatewayError:
            continue  # a fallback naming a group that is not served (or allowed): the next one
        call.fallbacks += 1
        call.fallback_from = requested
        call.group_name = name
        try:
            return await _on_group(call, attempt, scrub, group, candidates, group.router, options)
        except GatewayError as err:
            if call.headers_sent or maybe_delivered(err):
                raise
            last = err
    raise last


def _fit_context(
    call: Call, group: Group, candidates: list[Candidate]
) -> tuple[list[Candidate], int]:
    """The deployments whose context window holds the prompt, and the prompt estimate."""
    assert call.request is not None
    limits = [c.max_input_tokens for c in candidates]
    known = [v for v in limits if v]
    if not known:
        return candidates, 0
    tokens = estimate_tokens(call.request.body)
    fitting = [c for c, lim in zip(candidates, limits, strict=True) if not lim or tokens <= lim]
    if not fitting:
        raise context_window_error(group.name, tokens, max(known))
    return fitting, tokens


def _with_timeouts(candidate: Candidate, options: RequestOptions) -> Candidate:
    if options.timeout is None and options.stream_timeout is None:
        return candidate
    target = candidate.target
    return dataclasses.replace(
        candidate,
        target=dataclasses.replace(
            target,
            timeout_s=options.timeout or target.timeout_s,
            stream_timeout_s=options.stream_timeout or target.stream_timeout_s,
        ),
    )


async def _on_group(
    call: Call,
    attempt: Attempt,
    scrub: Scrub,
    group: Group,
    candidates: list[Candidate],
    settings: RouterSettings,
    options: RequestOptions,
    *,
    eager_fallback: bool = False,
) -> Any:
    """Attempts on one group's deployments, with its retries."""
    request = call.request
    assert request is not None
    if not candidates:
        raise UpstreamError(f"No deployment serves '{group.name}'.", retryable=False)
    candidates, tokens = _fit_context(call, group, candidates)
    if tokens == 0 and any(c.tpm for c in candidates):
        tokens = estimate_tokens(request.body)
    plan = Plan(
        group,
        candidates,
        settings,
        stream=request.stream,
        tokens=tokens,
        price_of=price_of if settings.routing_strategy == "cost-based-routing" else None,
    )
    retries = 0
    while True:
        candidate = _with_timeouts(await plan.next(), options)
        call.candidate = candidate
        dep = candidate.target.deployment_id
        state.started(dep)
        started = time.perf_counter()
        try:
            result = await attempt(candidate, get_provider(candidate.target.provider))
        except UpstreamError as err:
            state.ended(dep)
            err.message = scrub(err.message, candidate.target)
            plan.failed(candidate, err)
            if call.headers_sent or maybe_delivered(err):
                raise
            kind = error_class(err)
            if kind in (CONTEXT_WINDOW, CONTENT_POLICY) or retries >= settings.retries_for(
                kind, options.num_retries
            ):
                raise
            if eager_fallback and kind == RATE_LIMIT and not plan.has_untried():
                raise
            if (
                kind == TIMEOUT
                and err.request_sent
                and TIMEOUT not in settings.retry_policy
                and not plan.has_untried()
            ):
                raise  # the one that timed out may still be generating: not sent there again
            delay = plan.retry_delay(err, retries)
            if delay is None:
                raise
            retries += 1
            call.retries += 1
            if delay:
                await asyncio.sleep(delay)
            continue
        except BaseException:
            state.ended(dep)
            raise
        state.ended(dep)
        ttft = None
        if request.stream and call.ttft_ms is not None:
            ttft = max(0.0, call.ttft_ms / 1000 - (started - call.t0))
        state.record_latency(dep, time.perf_counter() - started, ttft)
        usage = getattr(result, "usage", None) or call.usage
        if usage is not None and usage.total_tokens and (candidate.tpm or _tracks_usage(settings)):
            state.add_tokens(dep, usage.total_tokens)
            link = shared.link()
            if link is not None:
                link.add_tokens(dep, usage.total_tokens)
        return result


def _tracks_usage(settings: RouterSettings) -> bool:
    return settings.routing_strategy.startswith("usage-based")
