"""The upstream HTTP/1.1 client: what goes on the wire, how bodies are framed and decoded, and
when a connection is reused."""

from __future__ import annotations

import asyncio
import gzip
import zlib

import pytest

from apps.gateway import h1
from tests.gateway.h1.support import (
    CHUNKED_HEAD,
    LAST_CHUNK,
    Peer,
    answer_each,
    chunk,
    echo,
    response,
    scripted,
)


async def _request(
    pool: h1.Pool, url: str, body: bytes = b"{}", headers: dict[str, str] | None = None
) -> h1.Response:
    return await pool.request(
        "POST",
        url,
        headers if headers is not None else {"content-type": "application/json"},
        body,
        connect_timeout=5.0,
        head_deadline=None,
    )


async def _fetch(pool: h1.Pool, url: str, **kw: object) -> tuple[h1.Response, bytes]:
    resp = await _request(pool, url, **kw)  # type: ignore[arg-type]
    body = await resp.read(None)
    resp.release()
    return resp, body


@pytest.fixture
async def pool() -> h1.Pool:
    pool = h1.Pool(asyncio.get_running_loop(), h1.NO_PROXIES)
    yield pool  # type: ignore[misc]
    pool.close()


async def test_request_bytes_on_the_wire(pool: h1.Pool) -> None:
    async with scripted(echo) as up:
        _, body = await _fetch(
            pool,
            up.url + "/model/a%3Ab/converse?alt=sse&x=1",
            body=b'{"a":1}',
            headers={"content-type": "application/json", "x-api-key": "k"},
        )
    assert body == b'{"a":1}'
    port = up.url.rsplit(":", 1)[1]
    assert up.requests[0] == (
        b"POST /model/a%3Ab/converse?alt=sse&x=1 HTTP/1.1\r\n"
        b"Host: 127.0.0.1:" + port.encode() + b"\r\n"
        b"content-type: application/json\r\nx-api-key: k\r\nContent-Length: 7\r\n\r\n"
    )


async def test_callers_host_wins_and_framing_headers_are_ours(pool: h1.Pool) -> None:
    async with scripted(echo) as up:
        _, body = await _fetch(
            pool,
            up.url + "/v1",
            body=b"abc",
            headers={"Host": "signed.example", "Content-Length": "99", "Transfer-Encoding": "x"},
        )
    assert body == b"abc"
    head = up.requests[0]
    assert b"Host: signed.example\r\n" in head and b"127.0.0.1" not in head
    assert head.count(b"Content-Length") == 1 and b"Content-Length: 3\r\n" in head
    assert b"Transfer-Encoding" not in head


async def test_a_path_with_spaces_and_non_ascii_is_escaped(pool: h1.Pool) -> None:
    async with scripted(lambda p: answer_each(p, lambda h, b: response())) as up:
        await _fetch(pool, up.url + "/a b/é")
    assert up.requests[0].startswith(b"POST /a%20b/%C3%A9 HTTP/1.1\r\n")


@pytest.mark.parametrize("value", ["a\r\nx-evil: 1", "a\nb", "a\rb", "a\x00b"])
async def test_a_header_with_a_line_break_is_refused_before_sending(
    pool: h1.Pool, value: str
) -> None:
    async with scripted(lambda p: answer_each(p, lambda h, b: response())) as up:
        with pytest.raises(h1.InvalidRequest):
            await _request(pool, up.url, headers={"x-key": value})
        await asyncio.sleep(0.05)
    assert up.requests == []


@pytest.mark.parametrize("url", ["ftp://h/x", "http:///x", "nonsense"])
async def test_a_url_that_is_not_http_is_refused(pool: h1.Pool, url: str) -> None:
    with pytest.raises(h1.InvalidRequest):
        await _request(pool, url)


async def test_response_headers_lowercased_and_repeats_joined(pool: h1.Pool) -> None:
    raw = response(b"x", headers=("X-One: a", "Set-Thing: 1", "set-thing: 2", "Retry-After: 3"))
    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        resp, _ = await _fetch(pool, up.url)
    assert resp.status == 200
    assert resp.headers["x-one"] == "a"
    assert resp.headers["set-thing"] == "1, 2"
    assert resp.headers["retry-after"] == "3"


async def test_keep_alive_reuses_one_connection(pool: h1.Pool) -> None:
    async with scripted(echo) as up:
        for n in range(5):
            _, body = await _fetch(pool, up.url, body=b"%d" % n)
            assert body == b"%d" % n
    assert len(up.peers) == 1


async def test_connection_close_from_upstream_is_not_reused(pool: h1.Pool) -> None:
    raw = response(b"ok", headers=("Connection: close",))
    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        for _ in range(3):
            _, body = await _fetch(pool, up.url)
            assert body == b"ok"
    assert len(up.peers) == 3


async def test_an_unread_body_closes_its_connection(pool: h1.Pool) -> None:
    async with scripted(lambda p: answer_each(p, lambda h, b: response(b"x" * 10))) as up:
        resp = await _request(pool, up.url)
        resp.release()  # body never read
        await _fetch(pool, up.url)
    assert len(up.peers) == 2


async def test_chunked_stream_arrives_chunk_by_chunk(pool: h1.Pool) -> None:
    """No buffering: each chunk is yielded before the upstream writes the next one."""
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
        resp = await _request(pool, up.url)
        assert resp.headers["content-type"] == "text/event-stream"
        async for data in resp.chunks(5.0):
            seen.append(data)
            gate.set()
        assert resp.complete
        resp.release()
        await _fetch(pool, up.url)  # the same connection serves the next request
    assert seen == [b"data: 1\n\n", b"data: 2\n\n", b"data: 3\n\n"]
    assert len(up.peers) == 1


async def test_body_until_close(pool: h1.Pool) -> None:
    async def handler(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\npart one ")
        await peer.send(b"part two")
        peer.writer.close()

    async with scripted(handler) as up:
        _, body = await _fetch(pool, up.url)
        assert body == b"part one part two"
        await _fetch(pool, up.url)
    assert len(up.peers) == 2


async def test_informational_head_is_skipped(pool: h1.Pool) -> None:
    raw = b"HTTP/1.1 100 Continue\r\n\r\n" + response(b"done", status="201 Created")
    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        resp, body = await _fetch(pool, up.url)
    assert (resp.status, body) == (201, b"done")


async def test_error_status_with_body(pool: h1.Pool) -> None:
    raw = response(b'{"error":{"message":"slow down"}}', status="429 Too Many Requests")
    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        resp, body = await _fetch(pool, up.url)
    assert resp.status == 429 and b"slow down" in body


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some servers send
    ],
)
async def test_compressed_bodies_are_decoded(pool: h1.Pool, encoding: str, encode: object) -> None:
    plain = b'{"text": "' + b"abc" * 5000 + b'"}'
    packed = encode(plain)  # type: ignore[operator]
    raw = response(packed, headers=(f"Content-Encoding: {encoding}",))

    async def streamed(peer: Peer) -> None:
        await peer.request()
        await peer.send(
            f"HTTP/1.1 200 OK\r\nContent-Encoding: {encoding}\r\n"
            "Transfer-Encoding: chunked\r\n\r\n".encode()
        )
        for n in range(0, len(packed), 100):
            await peer.send(chunk(packed[n : n + 100]))
        await peer.send(LAST_CHUNK)

    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        _, body = await _fetch(pool, up.url)
    assert body == plain
    async with scripted(streamed) as up:
        resp = await _request(pool, up.url)
        got = b"".join([data async for data in resp.chunks(5.0)])
        resp.release()
    assert got == plain


async def test_unknown_content_encoding_is_an_error(pool: h1.Pool) -> None:
    raw = response(b"....", headers=("Content-Encoding: br",))
    async with scripted(lambda p: answer_each(p, lambda h, b: raw)) as up:
        with pytest.raises(h1.MalformedResponse, match="content-encoding"):
            await _request(pool, up.url)
        assert await up.peers[0].closed_by_client()


async def test_large_body_is_read_whole_past_the_pause_level(pool: h1.Pool) -> None:
    """A body far above the buffer's high-water mark: the socket is paused and resumed as
    the reader takes data, and every byte arrives in order."""
    body = bytes(range(256)) * (4 * h1.HIGH_WATER // 256)
    async with scripted(lambda p: answer_each(p, lambda h, b: response(body))) as up:
        _, got = await _fetch(pool, up.url)
        assert got == body
        resp = await _request(pool, up.url)
        parts = []
        async for data in resp.chunks(5.0):
            assert len(data) <= h1.HIGH_WATER + 65536 * 4
            parts.append(data)
            await asyncio.sleep(0.001)  # a slow reader
        resp.release()
    assert b"".join(parts) == body
    assert len(up.peers) == 1
