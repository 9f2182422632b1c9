"""One native pass-through call: the client's model picks a model group, the group's
deployments of the route's provider are tried in order, and the first answer is relayed as it
comes (a complete body, or a stream in the provider's framing) with usage read on the way.

The client's model selects the group exactly as ``model`` does on ``/v1`` (key access, load
balancing); a name no group has is tried as ``<provider>/<name>``, so an admin opens a
provider's raw pass-through by defining a wildcard group such as ``gemini/*`` and refuses it by
not defining one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from apps.core.errors import InvalidRequest, ModelNotFound, UpstreamError
from apps.gateway import client_credentials, pipeline, tokens, upstream
from apps.gateway.call import Call, scrub
from apps.gateway.http import Request, Send, send_response
from apps.gateway.passthrough.errors import RelayedError
from apps.providers.base import NativeStreamScanner
from apps.providers.registry import get_provider
from apps.providers.schemas import Target, UpstreamRequest, Usage
from apps.routing.selectors import Candidate, candidates_for, routing_table

Handler = Callable[[Request], Awaitable[None]]

# Upstream response headers the client sees, besides the gateway's own.
RELAYED_HEADERS = (
    "content-type",
    "x-amzn-requestid",
    "x-amzn-bedrock-input-token-count",
    "x-amzn-bedrock-output-token-count",
    "x-amzn-bedrock-invocation-latency",
)


@dataclass(frozen=True, slots=True)
class NativeCall:
    """What a route worked out of the client's request."""

    route: str  # the route's provider name, e.g. "gemini"
    providers: frozenset[str]  # deployment providers that speak the route's format
    build: Callable[[Target], UpstreamRequest]  # the upstream request for one deployment
    usage: Callable[[bytes, Mapping[str, str]], Usage]  # usage of a complete answer
    scanner: Callable[[], NativeStreamScanner] | None = None  # set for a streamed answer


def check_segment(value: str, what: str) -> str:
    """``value`` as a name the gateway may put in an upstream path: no traversal, no control
    characters (it is percent-encoded where it is used)."""
    parts = value.split("/")
    if (
        not value
        or any(part in ("", ".", "..") for part in parts)
        or any(ord(c) < 0x20 or c in "\\\x7f" for c in value)
    ):
        raise InvalidRequest(f"Invalid {what} '{value[:100]}' in the path.", param=what)
    return value


async def group_name(route: str, model: str) -> str:
    """The name a native route's model is served under: the model itself, or
    ``<route>/<model>`` when only a wildcard group of the provider (``gemini/*``) serves it;
    known before the call's key access and limits are checked, which go by that name."""
    try:
        table = await routing_table()
    except Exception:  # the call itself reports a table that cannot load
        return model
    prefixed = f"{route}/{model}"
    if table.resolve(model) is None and table.resolve(prefixed) is not None:
        return prefixed
    return model


async def _candidates(call: Call, native: NativeCall) -> list[Candidate]:
    assert call.request is not None and call.principal is not None
    model = str(call.request.body["model"])
    try:
        group, found = await candidates_for(principal=call.principal, model=model)
    except ModelNotFound:
        prefixed = f"{native.route}/{model}"
        group, found = await candidates_for(principal=call.principal, model=prefixed)
        model = prefixed
    call.group_name = model
    usable = [c for c in found if c.target.provider in native.providers]
    if call.client_credentials is not None and usable:
        usable = await client_credentials.apply(
            call.client_credentials, group.client_credentials, group.name, usable
        )
    if not usable:
        raise InvalidRequest(
            f"Model group '{model}' has no {native.route} deployment to call natively.",
            param="model",
            code="unsupported_operation",
        )
    return usable


def _relayed_headers(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    lowered = {k.lower(): v for k, v in headers.items()}
    return [
        (name.encode(), lowered[name].encode("latin-1", "replace"))
        for name in RELAYED_HEADERS
        if name in lowered
    ]


def _failure(
    provider: object, target: Target, status: int, body: bytes, headers: Mapping[str, str]
) -> RelayedError:
    source: UpstreamError = provider.parse_error(status, body, headers)  # type: ignore[attr-defined]
    return RelayedError(source, status, body, headers, target)


async def answer(call: Call, send: Send, native: NativeCall) -> Decimal | None:
    """Try the usable deployments in order (the next only after a retryable failure and
    before any byte reached the client) and relay the first answer."""
    last: UpstreamError | None = None
    for candidate in await _candidates(call, native):
        call.candidate = candidate
        provider = get_provider(candidate.target.provider)
        try:
            target = await tokens.with_token(provider, candidate.target)
            req = native.build(target)
            if native.scanner is not None:
                await _relay_stream(call, send, provider, target, req, native.scanner())
                return None
            return await _relay_complete(call, send, provider, target, req, native)
        except UpstreamError as err:
            err.message = scrub(err.message, candidate.target)
            last = err
            if not err.retryable or call.headers_sent:
                raise
    assert last is not None
    raise last


async def _relay_complete(
    call: Call,
    send: Send,
    provider: object,
    target: Target,
    req: UpstreamRequest,
    native: NativeCall,
) -> Decimal:
    resp = await upstream.send(req, target=target)
    if resp.status >= 400:
        raise _failure(provider, target, resp.status, resp.body, resp.headers)
    call.usage = native.usage(resp.body, resp.headers)
    cost = pipeline.request_cost_of(call)
    headers = _relayed_headers(resp.headers)
    content_type = next((v for k, v in headers if k == b"content-type"), b"application/json")
    headers = [(k, v) for k, v in headers if k != b"content-type"]
    await send_response(
        send, resp.status, resp.body, headers + call.response_headers(cost), content_type
    )
    return cost


async def _relay_stream(
    call: Call,
    send: Send,
    provider: object,
    target: Target,
    req: UpstreamRequest,
    scanner: NativeStreamScanner,
) -> None:
    """Relay the upstream stream chunk by chunk. A failure after the first byte ends the
    response where it is (the framing has no gateway error event) and is recorded."""
    async with upstream.open_stream(req, target=target) as up:
        if up.status >= 400:
            body = await up.read_all()
            raise _failure(provider, target, up.status, body, up.headers)
        call.headers_sent = True
        call.ttft_ms = call.elapsed_ms()
        await send(
            {
                "type": "http.response.start",
                "status": up.status,
                "headers": [
                    *_relayed_headers(up.headers),
                    (b"cache-control", b"no-cache"),
                    (b"x-accel-buffering", b"no"),
                    *call.response_headers(),
                ],
            }
        )
        try:
            async for data in up.chunks():
                out = scanner.feed(data)
                if out:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
            tail = scanner.finish()
        except UpstreamError as err:
            call.failed(err)
            tail = b""
        call.usage = scanner.usage
        if scanner.error is not None and call.error is None:
            call.failed(scanner.error)
        call.body_done = True
        await send({"type": "http.response.body", "body": tail})
