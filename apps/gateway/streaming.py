"""A streamed answer, relayed to the client as it arrives.

Each upstream stream takes one of four paths, one method each:

- ``_relay_local``: an in-process provider's chunks (the ``mock`` provider);
- ``_relay_native``: the client's own format is the provider's, bytes pass through unchanged;
- ``_relay_openai``: OpenAI format on both sides, bytes pass through, parsed only where needed;
- ``_relay_decoded``: anything else, decoded to canonical chunks and encoded for the client.

Errors before the first byte go back to the caller (which answers with an error response and
may try the next deployment); later ones end the stream with an error event in the client's
format.
"""

from __future__ import annotations

import asyncio

from apps.core.errors import GatewayError
from apps.gateway import pipeline, tokens, upstream
from apps.gateway.call import Call, response_id_of
from apps.gateway.dialects.openai.dialect import OpenAIStreamEncoder
from apps.gateway.http import SSE_HEADERS, Send
from apps.providers.base import (
    NativeStreamScanner,
    Provider,
    RelayDecoder,
    StreamDecoder,
    SupportsLocal,
)
from apps.providers.schemas import CanonicalRequest, StreamChunk, Usage
from apps.routing.selectors import Candidate


def _usage_of(chunk: StreamChunk) -> tuple[Usage | None, bool]:
    """(usage carried by the chunk, whether the chunk carries nothing else)."""
    data = chunk.data
    if data is None:
        return None, False
    raw_usage = data.get("usage")
    if not isinstance(raw_usage, dict):
        return None, False
    return Usage.from_openai(raw_usage), data.get("choices") == []


class StreamRelay:
    """One streamed answer: tries the call's deployments in turn and relays the first that
    answers, in the client's format."""

    __slots__ = ("call", "encoder", "request", "send")

    def __init__(self, call: Call, send: Send) -> None:
        assert call.request is not None
        self.call = call
        self.request: CanonicalRequest = call.request
        self.send = send
        self.encoder = call.dialect.stream_encoder(call.request)

    async def run(self) -> None:
        """Raises GatewayError only before the first byte was sent."""
        try:
            await pipeline.attempts(self.call, self._attempt)
        except GatewayError as err:
            if not self.call.headers_sent:
                raise
            self.call.failed(err)
            await self.send(
                {"type": "http.response.body", "body": self.encoder.error(err), "more_body": True}
            )
            await self.send({"type": "http.response.body", "body": b""})
            return
        if not self.call.body_done:
            await self._send_end(self.encoder.finish(self.call.usage))

    async def _attempt(self, candidate: Candidate, provider: Provider) -> None:
        """One deployment: open its stream and relay it along the path that fits."""
        local = provider.local
        if local is not None:
            await self._relay_local(candidate, local)
            return
        target = await tokens.with_token(provider, candidate.target)
        req = pipeline.build_request(provider, self.request, target)
        async with upstream.open_stream(req, target=target) as up:
            if up.status >= 400:
                body = await up.read_all()
                raise provider.parse_error(up.status, body, up.headers)
            native = pipeline.native_of(provider, self.request)
            if native is not None:
                await self._relay_native(native.native_stream_scanner(), up)
                return
            if isinstance(self.encoder, OpenAIStreamEncoder):
                relay = provider.new_relay_decoder(self.request, target)
                if relay is not None:
                    await self._relay_openai(relay, self.encoder, up)
                    return
            await self._relay_decoded(provider.new_stream_decoder(self.request, target), up)

    # --- the four paths -------------------------------------------------------------------

    async def _relay_local(self, candidate: Candidate, local: SupportsLocal) -> None:
        target = candidate.target
        first, between = local.local_latency_s(target)
        if first:
            await asyncio.sleep(first)
        for n, chunk in enumerate(local.local_stream(self.request, target)):
            if between and n:
                await asyncio.sleep(between)
            await self._emit([chunk])

    async def _relay_native(
        self, scanner: NativeStreamScanner, up: upstream.UpstreamStream
    ) -> None:
        """Bytes straight through, in the client's own format; usage read on the way. An
        error event of the upstream's reaches the client as it is and is recorded."""
        async for data in up.chunks():
            await self._send(scanner.feed(data))
        tail = scanner.finish()
        self.call.usage = scanner.usage
        if scanner.error is not None:
            self.call.failed(scanner.error)
        await self._send_end(tail)

    async def _relay_openai(
        self, decoder: RelayDecoder, encoder: OpenAIStreamEncoder, up: upstream.UpstreamStream
    ) -> None:
        """OpenAI format in and out: upstream bytes go out as they are, parsed only where a
        read holds the usage chunk, an error or the end (the hot streaming path).

        The read that brings ``[DONE]`` goes out with the gateway's own end of the stream in
        one final message (one write instead of two); the rest of the upstream body (usually
        nothing but the chunked terminator) is read afterwards so its connection is reused.
        """
        include_usage = self.request.include_usage
        async for data in up.chunks():
            last = decoder.relay(data, include_usage)
            if decoder.done:
                break
            await self._send(last)
        else:
            last = b""
        last += decoder.finish_relay(include_usage)
        self.call.usage = decoder.usage
        encoder.relayed(decoder.usage_relayed, decoder.last_chunk)
        await self._send_end(last + encoder.finish(self.call.usage))
        await up.drain()

    async def _relay_decoded(self, decoder: StreamDecoder, up: upstream.UpstreamStream) -> None:
        async for data in up.chunks():
            await self._emit(decoder.feed(data))
        await self._emit(decoder.finish())
        if decoder.usage is not None:
            self.call.usage = decoder.usage

    # --- sending --------------------------------------------------------------------------

    async def _emit(self, chunks: list[StreamChunk]) -> None:
        """Canonical chunks, encoded for the client; the usage they carry is kept."""
        if not chunks:
            return
        out = []
        for chunk in chunks:
            usage, usage_only = _usage_of(chunk)
            if usage is not None:
                self.call.usage = usage
            out.append(self.encoder.chunk(chunk, usage_only))
        await self._send(b"".join(out))

    async def _start(self) -> None:
        call = self.call
        call.headers_sent = True
        call.ttft_ms = call.elapsed_ms()
        await self.send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": SSE_HEADERS + call.response_headers(),
            }
        )

    async def _send(self, data: bytes) -> None:
        if not self.call.headers_sent:
            self.call.response_id = response_id_of(data)
            await self._start()
        if data:
            await self.send({"type": "http.response.body", "body": data, "more_body": True})

    async def _send_end(self, data: bytes) -> None:
        """The last message of the response: nothing may be sent after it."""
        if not self.call.headers_sent:
            self.call.response_id = response_id_of(data)
            await self._start()
        self.call.body_done = True
        await self.send({"type": "http.response.body", "body": data})


async def stream(call: Call, send: Send) -> None:
    """Relay ``call``'s streamed answer. Raises GatewayError only before the first byte."""
    await StreamRelay(call, send).run()
