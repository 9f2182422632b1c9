"""The upstream transport on aiohttp in the ordinary case: the request as it reaches the
upstream, keep-alive reuse, streams chunk by chunk, response headers, compression, and the
answers a provider API never means (1xx, 3xx) or the gateway will not read (too large)."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from apps.core.errors import UpstreamConnectFailed, UpstreamProtocolError
from apps.gateway import upstream
from tests.gateway.upstream.support import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    Peer,
    answer_each,
    chunk,
    echo,
    fetch,
    post,
    response,
    scripted,
    target,
)


def fixed(raw: bytes) -> object:
    return lambda peer: answer_each(peer, lambda head, body: raw)


async def test_request_bytes_on_the_wire() -> None:
    async with scripted(echo) as up:
        req = post(
            up.url + "/model/a%3Ab%2Fc/converse?alt=sse&x=1",
            b'{"a":1}',
            {"content-type": "application/json", "x-api-key": "k"},
        )
        resp = await upstream.send(req, target=target())
    assert resp.body == b'{"a":1}'
    head = up.requests[0]
    port = up.url.rsplit(":", 1)[1].encode()
    assert head.startswith(b"POST /model/a%3Ab%2Fc/converse?alt=sse&x=1 HTTP/1.1\r\n")
    assert b"\r\nHost: 127.0.0.1:" + port + b"\r\n" in head
    assert b"content-type: application/json\r\n" in head and b"x-api-key: k\r\n" in head
    assert b"Content-Length: 7\r\n" in head
    # Nothing the provider did not ask for: no compression, no client identification.
    for name in (b"Accept-Encoding", b"User-Agent", b"Cookie"):
        assert name.lower() not in head.lower()


async def test_callers_host_header_wins() -> None:
    async with scripted(echo) as up:
        req = post(up.url + "/v1", b"abc", {"Host": "signed.example"})
        await upstream.send(req, target=target())
    assert b"Host: signed.example\r\n" in up.requests[0]


async def test_a_path_with_spaces_and_non_ascii_is_escaped() -> None:
    async with scripted(fixed(response())) as up:
        await fetch(up.url + "/a b/\u00e9")
    assert up.requests[0].startswith(b"POST /a%20b/%C3%A9 HTTP/1.1\r\n")


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "a\rb"])
async def test_a_header_with_a_line_break_is_refused_before_sending(value: str) -> None:
    async with scripted(fixed(response())) as up:
        with pytest.raises(UpstreamConnectFailed) as info:
            await upstream.send(post(up.url, headers={"x-key": value}), target=target())
        await asyncio.sleep(0.05)
    assert up.requests == []
    assert info.value.request_sent is False and "evil" not in info.value.message


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "nonsense"])
async def test_a_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(UpstreamConnectFailed):
        await fetch(url)


async def test_response_headers_lowercased_and_repeats_joined() -> None:
    raw = response(b"x", headers=("X-One: a", "Set-Thing: 1", "set-thing: 2", "Retry-After: 3"))
    async with scripted(fixed(raw)) as up:
        resp = await upstream.send(post(up.url), target=target())
    assert resp.status == 200
    assert resp.headers["x-one"] == "a"
    assert resp.headers["set-thing"] == "1, 2"
    assert resp.headers["retry-after"] == "3"


async def test_cookies_from_an_upstream_are_never_sent_back() -> None:
    raw = response(b"x", headers=("Set-Cookie: session=tenant-a; Path=/",))
    async with scripted(fixed(raw)) as up:
        await fetch(up.url)
        await fetch(up.url)
    assert all(b"cookie" not in head.lower() for head in up.requests)


async def test_keep_alive_reuses_one_connection() -> None:
    async with scripted(echo) as up:
        for n in range(5):
            assert await fetch(up.url, b"%d" % n) == b"%d" % n
    assert len(up.peers) == 1


async def test_connection_close_from_upstream_is_not_reused() -> None:
    async with scripted(fixed(response(b"ok", headers=("Connection: close",)))) as up:
        for _ in range(3):
            assert await fetch(up.url) == b"ok"
    assert len(up.peers) == 3


async def test_chunked_stream_arrives_chunk_by_chunk() -> None:
    """No buffering: each chunk is yielded before the upstream writes the next one, and a
    stream read to its end leaves its connection for the next call."""
    gate = asyncio.Event()
    seen: list[bytes] = []

    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        for n in (2, 3):
            await gate.wait()
            gate.clear()
            await peer.send(chunk(b"data: %d\n\n" % n))
        await gate.wait()
        await peer.send(LAST_CHUNK)
        await answer_each(peer, lambda h, b: response())

    async with scripted(handler) as up:
        async with upstream.open_stream(post(up.url), target=target()) as stream:
            assert stream.headers["content-type"] == "text/event-stream"
            async for data in stream.chunks():
                seen.append(data)
                gate.set()
        await fetch(up.url)
    assert seen == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    assert len(up.peers) == 1


async def test_an_abandoned_stream_closes_its_connection() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await peer.request()  # returns when the client closes

    async with scripted(handler) as up:
        async with upstream.open_stream(post(up.url), target=target()) as stream:
            async for _ in stream.chunks():
                break
        assert await up.peers[0].closed_by_client()


async def test_body_until_close() -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one ")
        await peer.send(b"part two")
        peer.writer.close()

    async with scripted(handler) as up:
        assert await fetch(up.url) == b"part one part two"


async def test_informational_head_is_skipped() -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"done", status="201 Created")
    async with scripted(fixed(raw)) as up:
        resp = await upstream.send(post(up.url), target=target())
    assert (resp.status, resp.body) == (201, b"done")


async def test_error_status_with_body() -> None:
    raw = response(b'{"error":{"message":"slow down"}}', status="429 Too Many Requests")
    async with scripted(fixed(raw)) as up:
        resp = await upstream.send(post(up.url), target=target())
    assert resp.status == 429 and b"slow down" in resp.body


@pytest.mark.parametrize("status", ["301 Moved Permanently", "302 Found", "307 Temporary Redirect"])
async def test_a_redirect_is_an_upstream_error_not_followed(status: str) -> None:
    """Regression: a 3xx reached the client as a 200 carrying the redirect's body."""
    raw = response(
        b"<html>moved</html>", status=status, headers=("Location: http://evil.example/",)
    )
    async with scripted(fixed(raw)) as up:
        with pytest.raises(UpstreamProtocolError) as info:
            await upstream.send(post(up.url), target=target())
        with pytest.raises(UpstreamProtocolError):
            async with upstream.open_stream(post(up.url), target=target()):
                pytest.fail("a redirect must not open a stream")
    assert info.value.http_status == 502
    assert info.value.upstream_status == int(status[:3])
    assert "redirect" in info.value.message and "evil" not in info.value.message
    assert len(up.requests) == 2  # the Location was never followed


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [("gzip", gzip.compress), ("deflate", zlib.compress)],
)
async def test_compressed_bodies_are_decoded(encoding: str, encode: object) -> None:
    """Sent although the gateway never asks for compression: still read correctly."""
    plain = b'{"text": "' + b"abc" * 5000 + b'"}'
    packed = encode(plain)  # type: ignore[operator]

    async def streamed(peer: Peer) -> None:
        await peer.request()
        await peer.send(
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for n in range(0, len(packed), 100):
            await peer.send(chunk(packed[n : n + 100]))
        await peer.send(LAST_CHUNK)

    async with scripted(fixed(response(packed, headers=(f"Content-Encoding: {encoding}",)))) as up:
        assert await fetch(up.url) == plain
    async with (
        scripted(streamed) as up,
        upstream.open_stream(post(up.url), target=target()) as stream,
    ):
        got = b"".join([data async for data in stream.chunks()])
    assert got == plain


async def test_an_answer_over_the_cap_is_refused(settings: object) -> None:
    settings.GATEWAY_UPSTREAM_MAX_RESPONSE_BYTES = 1000  # type: ignore[attr-defined]
    await upstream.close_pool()
    big = b"x" * 1001

    async def unframed(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n" + big)
        peer.writer.close()

    async with scripted(fixed(response(big))) as up:
        with pytest.raises(UpstreamProtocolError, match="larger than 1000 bytes"):
            await fetch(up.url)
    async with scripted(unframed) as up:
        with pytest.raises(UpstreamProtocolError, match="larger than 1000 bytes"):
            await fetch(up.url)
    async with scripted(fixed(response(b"y" * 1000))) as up:
        assert await fetch(up.url) == b"y" * 1000


async def test_large_body_is_read_whole_by_a_slow_reader() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB
    async with scripted(fixed(response(body))) as up:
        assert await fetch(up.url) == body
        parts = []
        async with upstream.open_stream(post(up.url), target=target()) as stream:
            async for data in stream.chunks():
                assert len(data) <= 1024 * 1024
                parts.append(data)
                await asyncio.sleep(0.001)
    assert b"".join(parts) == body
    assert len(up.peers) == 1
