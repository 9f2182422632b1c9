"""The request pipeline: authenticated call -> routing -> provider attempts -> rendered answer.

Knows the order of steps; knows nothing of any one provider or client format. Every call ends in
exactly one usage row, written from ``finish`` whatever happened (success, upstream error,
client error, client disconnect).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from django.utils import timezone

from apps.core.errors import GatewayError, UpstreamError
from apps.gateway import tokens, upstream
from apps.gateway.http import SSE_HEADERS, Send
from apps.keys.auth import Principal
from apps.providers.base import capabilities
from apps.providers.registry import get_provider
from apps.providers.schemas import CanonicalRequest, Result, StreamChunk, Target, Usage
from apps.routing.selectors import Candidate, candidates_for
from apps.usage.services import UsageEvent, request_cost, usage_record


class StreamEncoder(Protocol):
    def chunk(self, chunk: StreamChunk, usage_only: bool) -> bytes: ...
    def finish(self, usage: Usage | None) -> bytes: ...
    def error(self, err: GatewayError) -> bytes: ...


class Dialect(Protocol):
    """A client-facing API format (OpenAI, Anthropic, ...)."""

    name: str

    def error(self, err: GatewayError) -> tuple[int, bytes]: ...
    def render(self, request: CanonicalRequest, result: Result) -> bytes: ...
    def stream_encoder(self, request: CanonicalRequest) -> StreamEncoder: ...


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def header_value(text: str) -> bytes:
    """``text`` (the client's own model name, say) made safe as a header value: a control
    character would make the server refuse the response or split the header."""
    return _CONTROL.sub(" ", text).encode("latin-1", "replace")


_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*.]{6,}|AKIA[0-9A-Z]{12,}|AIza[0-9A-Za-z_\-]{20,})")


def scrub(message: str, target: Target | None) -> str:
    """Remove anything that looks like a credential from an upstream message."""
    if target is not None:
        for secret in (target.api_key, target.access_token):
            if secret and len(secret) >= 4:
                message = message.replace(secret, "****")
    return _KEYLIKE.sub("****", message)


class Call:
    """One client request on its way through the gateway."""

    __slots__ = (
        "body_done",
        "call_type",
        "candidate",
        "dialect",
        "error",
        "group_name",
        "headers_sent",
        "principal",
        "request",
        "request_id",
        "start_time",
        "status",
        "t0",
        "ttft_ms",
        "usage",
    )

    def __init__(
        self,
        *,
        request_id: str,
        call_type: str,
        dialect: Dialect,
        principal: Principal | None = None,
        request: CanonicalRequest | None = None,
    ) -> None:
        self.request_id = request_id
        self.call_type = call_type
        self.dialect = dialect
        self.principal = principal
        self.request = request
        self.t0 = time.perf_counter()
        self.start_time: datetime = timezone.now()
        self.candidate: Candidate | None = None
        self.group_name = ""
        self.usage: Usage | None = None
        self.status = 200
        self.error: GatewayError | None = None
        self.ttft_ms: int | None = None
        self.headers_sent = False
        # The response's last byte went to the client (nothing may be sent after it).
        self.body_done = False

    def elapsed_ms(self) -> int:
        return int((time.perf_counter() - self.t0) * 1000)

    def response_headers(self, cost: Decimal | None = None) -> list[tuple[bytes, bytes]]:
        rid = self.request_id.encode()
        headers = [(b"x-request-id", rid), (b"x-litellm-call-id", rid)]
        if self.group_name:
            headers.append((b"x-litellm-model-group", header_value(self.group_name)))
        if self.candidate is not None:
            target = self.candidate.target
            headers.append((b"x-litellm-model-id", target.deployment_id.encode()))
            headers.append((b"x-gateway-provider", target.provider.encode()))
        if cost is not None:
            headers.append((b"x-litellm-response-cost", format(cost.normalize(), "f").encode()))
        return headers

    def finish(self, cost: Decimal | None = None) -> Decimal:
        """Queue this call's usage row; returns its cost (computed unless given)."""
        body = self.request.body if self.request is not None else {}
        err = self.error
        end_user = body.get("user") if isinstance(body.get("user"), str) else ""
        return usage_record(
            UsageEvent(
                request_id=self.request_id,
                call_type=self.call_type,
                principal=self.principal,
                model_group=self.group_name or str(body.get("model") or "")[:255],
                start_time=self.start_time,
                latency_ms=self.elapsed_ms(),
                status_code=self.status,
                stream=bool(self.request and self.request.stream),
                candidate=self.candidate,
                usage=self.usage,
                cost=cost,
                end_user=end_user,
                error_type=(err.code or err.type or "") if err else "",
                error_message=err.message if err else "",
                ttft_ms=self.ttft_ms,
                metadata=body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
            )
        )


async def _route(call: Call) -> list[Candidate]:
    assert call.request is not None and call.principal is not None
    model = call.request.body["model"]
    call.group_name = model
    _group, candidates = await candidates_for(principal=call.principal, model=model)
    if not candidates:
        raise UpstreamError(f"No deployment serves '{model}'.", retryable=False)
    return candidates


async def _attempts(call: Call, attempt: Callable[[Candidate, Any], Awaitable[Any]]) -> Any:
    """Try each candidate in order; move on only after a retryable upstream error."""
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


def _speaks_natively(provider: Any, request: CanonicalRequest) -> bool:
    return (
        request.native is not None and capabilities(provider).native_format == request.native_format
    )


def _build(provider: Any, request: CanonicalRequest, target: Target) -> Any:
    if _speaks_natively(provider, request):
        assert request.native is not None
        return provider.build_native_request(request.native, target, request.client_headers)
    return provider.build_request(request, target)


async def _complete(call: Call, candidate: Candidate, provider: Any) -> Result:
    request = call.request
    assert request is not None
    target = candidate.target
    if capabilities(provider).local:
        first, _ = provider.local_latency_s(target)
        if first:
            await asyncio.sleep(first)
        return provider.local_response(request, target)
    target = await tokens.with_token(provider, target)
    req = _build(provider, request, target)
    resp = await upstream.send(req, timeout_s=target.timeout_s, provider=target.provider)
    if resp.status >= 400:
        raise provider.parse_error(resp.status, resp.body, resp.headers)
    if _speaks_natively(provider, request):
        return Result(data={}, usage=provider.native_usage(resp.body), raw=resp.body, native=True)
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
    result: Result = await _attempts(call, lambda c, p: _complete(call, c, p))
    call.usage = result.usage
    return result


def _usage_of(chunk: StreamChunk) -> tuple[Usage | None, bool]:
    """(usage carried by the chunk, whether the chunk carries nothing else)."""
    data = chunk.data
    if data is None:
        return None, False
    raw_usage = data.get("usage")
    if not isinstance(raw_usage, dict):
        return None, False
    return Usage.from_openai(raw_usage), data.get("choices") == []


async def stream(call: Call, send: Send, extra_headers: list[tuple[bytes, bytes]]) -> None:
    """Relay a stream to the client as it arrives. Raises GatewayError only before the first
    byte was sent; later failures end the stream with an error event in the client's format."""
    request = call.request
    assert request is not None
    encoder = call.dialect.stream_encoder(request)

    async def start() -> None:
        call.headers_sent = True
        call.ttft_ms = call.elapsed_ms()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": SSE_HEADERS + extra_headers + call.response_headers(),
            }
        )

    async def send_bytes(data: bytes) -> None:
        if not call.headers_sent:
            await start()
        if data:
            await send({"type": "http.response.body", "body": data, "more_body": True})

    async def send_end(data: bytes) -> None:
        """The last message of the response: nothing may be sent after it."""
        if not call.headers_sent:
            await start()
        call.body_done = True
        await send({"type": "http.response.body", "body": data})

    async def emit(chunks: list[StreamChunk]) -> None:
        if not chunks:
            return
        out = []
        for chunk in chunks:
            usage, usage_only = _usage_of(chunk)
            if usage is not None:
                call.usage = usage
            out.append(encoder.chunk(chunk, usage_only))
        await send_bytes(b"".join(out))

    async def relay_native(scanner: Any, up: upstream.UpstreamStream) -> None:
        """Bytes straight through, in the client's own format; usage read on the way."""
        async for data in up.chunks():
            await send_bytes(scanner.feed(data))
        tail = scanner.finish()
        call.usage = scanner.usage
        if scanner.error is not None:
            call.error = scanner.error
            call.status = scanner.error.http_status
        await send_end(tail)

    async def relay_openai(decoder: Any, up: upstream.UpstreamStream) -> None:
        """OpenAI format in and out: upstream bytes go out as they are, parsed only where a
        read holds the usage chunk, an error or the end (the hot streaming path).

        The read that brings ``[DONE]`` goes out with the gateway's own end of the stream in
        one final message (one write instead of two); the rest of the upstream body (usually
        nothing but the chunked terminator) is read afterwards so its connection is reused.
        """
        include_usage = request.include_usage
        async for data in up.chunks():
            last = decoder.relay(data, include_usage)
            if decoder.done:
                break
            await send_bytes(last)
        else:
            last = b""
        last += decoder.finish_relay(include_usage)
        call.usage = decoder.usage
        encoder.relayed(decoder.usage_relayed, decoder.last_chunk)
        await send_end(last + encoder.finish(call.usage))
        await up.drain()

    relays_bytes = getattr(encoder, "relays_openai_bytes", False)

    async def attempt(candidate: Candidate, provider: Any) -> None:
        target = candidate.target
        if capabilities(provider).local:
            first, between = provider.local_latency_s(target)
            if first:
                await asyncio.sleep(first)
            for n, chunk in enumerate(provider.local_stream(request, target)):
                if between and n:
                    await asyncio.sleep(between)
                await emit([chunk])
            return
        target = await tokens.with_token(provider, target)
        req = _build(provider, request, target)
        timeout = target.stream_timeout_s or target.timeout_s
        async with upstream.open_stream(req, timeout_s=timeout, provider=target.provider) as up:
            if up.status >= 400:
                body = await up.read_all()
                raise provider.parse_error(up.status, body, up.headers)
            if _speaks_natively(provider, request):
                await relay_native(provider.native_stream_scanner(), up)
                return
            decoder = provider.new_stream_decoder(request, target)
            if relays_bytes and hasattr(decoder, "relay"):
                await relay_openai(decoder, up)
                return
            async for data in up.chunks():
                await emit(decoder.feed(data))
            await emit(decoder.finish())
            if decoder.usage is not None:
                call.usage = decoder.usage

    try:
        await _attempts(call, attempt)
    except GatewayError as err:
        if not call.headers_sent:
            raise
        err.message = scrub(err.message, call.candidate.target if call.candidate else None)
        call.error = err
        call.status = err.http_status
        await send({"type": "http.response.body", "body": encoder.error(err), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if not call.body_done:
        await send_end(encoder.finish(call.usage))


def request_cost_of(call: Call) -> Decimal:
    return request_cost(call.candidate, call.usage)
