"""The upstream HTTP/1.1 client when things go wrong: refused and slow connections, timeouts,
connections that end early, stale keep-alive connections, bad responses, TLS."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from apps.core.errors import UpstreamTimeout, UpstreamUnavailable
from apps.gateway import h1, upstream
from apps.gateway.h1 import pool as h1_pool
from apps.providers.schemas import UpstreamRequest
from tests.gateway.h1.support import (
    CHUNKED_HEAD,
    Peer,
    answer_each,
    chunk,
    echo,
    response,
    scripted,
    self_signed_certificate,
)


async def _request(pool: h1.Pool, url: str, head_deadline: float | None = None) -> h1.Response:
    return await pool.request(
        "POST", url, {"x": "y"}, b"{}", connect_timeout=2.0, head_deadline=head_deadline
    )


async def _fetch(pool: h1.Pool, url: str) -> bytes:
    resp = await _request(pool, url)
    body = await resp.read(None)
    resp.release()
    return body


@pytest.fixture
async def pool() -> h1.Pool:
    pool = h1.Pool(asyncio.get_running_loop(), h1.NO_PROXIES)
    yield pool  # type: ignore[misc]
    pool.close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection(pool: h1.Pool) -> None:
    with pytest.raises(h1.ConnectFailed) as info:
        await _request(pool, f"http://127.0.0.1:{_free_port()}/v1/x?key=SECRET")
    assert info.value.host == "127.0.0.1" and "SECRET" not in str(info.value)


async def test_connect_timeout(pool: h1.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: object, **kw: object) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(pool.loop, "create_connection", never)
    with pytest.raises(h1.ConnectFailed, match="timed out"):
        await pool.request(
            "GET", "http://127.0.0.1:9/", {}, b"", connect_timeout=0.1, head_deadline=None
        )


async def test_name_resolution_failure(pool: h1.Pool, monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*args: object, **kw: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(pool.loop, "getaddrinfo", fail)
    with pytest.raises(h1.ConnectFailed) as info:
        await _request(pool, "http://upstream.invalid/v1")
    assert info.value.host == "upstream.invalid"


async def test_names_are_resolved_once_per_ttl(
    pool: h1.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    real = pool.loop.getaddrinfo

    async def counting(*args: object, **kw: object) -> object:
        calls.append(args[0])
        return await real(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(pool.loop, "getaddrinfo", counting)
    closing = response(b"ok", headers=("Connection: close",))
    async with scripted(lambda p: answer_each(p, lambda h, b: closing)) as up:
        url = up.url.replace("127.0.0.1", "localhost")
        assert await _fetch(pool, url) == b"ok"
        assert await _fetch(pool, url) == b"ok"
    assert calls == ["localhost"] and len(up.peers) == 2


async def _silent(peer: Peer) -> None:
    await peer.request()
    await peer.request()  # never answers; returns when the client closes


async def test_no_answer_times_out_and_closes(pool: h1.Pool) -> None:
    async with scripted(_silent) as up:
        deadline = pool.loop.time() + 0.2
        with pytest.raises(TimeoutError):
            await _request(pool, up.url, head_deadline=deadline)
        assert await up.peers[0].closed_by_client()
    assert pool.idle.get(("http", "127.0.0.1", int(up.url.rsplit(":", 1)[1]))) in (None, [])


async def test_cancelled_while_waiting_closes_the_connection(pool: h1.Pool) -> None:
    async with scripted(_silent) as up:
        task = asyncio.create_task(_request(pool, up.url))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await up.peers[0].closed_by_client()


async def test_stream_stalls_between_chunks(pool: h1.Pool) -> None:
    async def stall(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await peer.request()

    async with scripted(stall) as up:
        resp = await _request(pool, up.url)
        seen = []
        with pytest.raises(TimeoutError):
            async for data in resp.chunks(0.2):
                seen.append(data)
        resp.close()
        assert seen == [b"data: 1\n\n"]
        assert await up.peers[0].closed_by_client()


async def test_closed_mid_body(pool: h1.Pool) -> None:
    async def cut(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        peer.writer.close()

    async with scripted(cut) as up:
        resp = await _request(pool, up.url)
        with pytest.raises(h1.Disconnected):
            async for _ in resp.chunks(5.0):
                pass
        resp.close()
        with pytest.raises(h1.Disconnected):
            resp = await _request(pool, up.url)
            await resp.read(None)


async def test_closed_before_answering_on_a_new_connection(pool: h1.Pool) -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.request()
        peer.writer.close()

    async with scripted(hang_up) as up:
        with pytest.raises(h1.Disconnected):
            await _request(pool, up.url)
    assert len(up.peers) == 1  # a request on a new connection is not sent twice


async def test_stale_keep_alive_connection_is_replaced(pool: h1.Pool) -> None:
    """The upstream closes an idle connection without saying so (its own idle timeout): the
    next request goes out again on a new connection instead of failing."""

    async def once(peer: Peer) -> None:
        await peer.request()
        await peer.send(response(b"first"))
        await asyncio.sleep(0.05)
        peer.writer.close()

    async with scripted(once) as up:
        assert await _fetch(pool, up.url) == b"first"
        assert await _fetch(pool, up.url) == b"first"
    assert len(up.peers) == 2


async def test_parting_message_on_an_idle_connection(pool: h1.Pool) -> None:
    async def parting(peer: Peer) -> None:
        await peer.request()
        await peer.send(response(b"ok"))
        await asyncio.sleep(0.05)
        await peer.send(response(b"", status="408 Request Timeout", headers=("Connection: close",)))
        await peer.request()

    async with scripted(parting) as up:
        assert await _fetch(pool, up.url) == b"ok"
        await asyncio.sleep(0.2)
        assert await _fetch(pool, up.url) == b"ok"
    assert len(up.peers) == 2


async def test_malformed_response(pool: h1.Pool) -> None:
    async def garbage(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 ok fine\r\n\r\n")
        await peer.request()

    async with scripted(garbage) as up:
        with pytest.raises(h1.MalformedResponse):
            await _request(pool, up.url)
        assert await up.peers[0].closed_by_client()


async def test_a_response_head_without_end_is_refused(pool: h1.Pool) -> None:
    async def endless(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n")
        for n in range(200):  # 200 KiB of headers, and no end in sight
            await peer.send(b"x-filler-%d: %s\r\n" % (n, b"v" * 1024))
        await peer.request()

    async with scripted(endless) as up:
        with pytest.raises(h1.MalformedResponse, match="over 64 KiB"):
            await _request(pool, up.url)
        assert await up.peers[0].closed_by_client()


async def test_idle_connection_past_keepalive_is_not_reused(
    pool: h1.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with scripted(lambda p: answer_each(p, lambda h, b: response(b"ok"))) as up:
        await _fetch(pool, up.url)
        monkeypatch.setattr(h1_pool, "KEEPALIVE_S", 0.0)
        await asyncio.sleep(0.01)
        await _fetch(pool, up.url)
        assert await up.peers[0].closed_by_client()
    assert len(up.peers) == 2


async def test_closing_the_pool_closes_idle_connections(pool: h1.Pool) -> None:
    async with scripted(lambda p: answer_each(p, lambda h, b: response(b"ok"))) as up:
        await _fetch(pool, up.url)
        pool.close()
        assert await up.peers[0].closed_by_client()


async def test_upstream_errors_name_only_the_host() -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1/models/m:generate?key=SECRET-KEY"
    req = UpstreamRequest(method="POST", url=url, headers={}, body=b"{}")
    with pytest.raises(UpstreamUnavailable) as info:
        await upstream.send(req, timeout_s=2.0, provider="gemini")
    assert str(info.value.message) == "gemini error: cannot connect to 127.0.0.1."
    bad = UpstreamRequest(method="POST", url=url, headers={"x": "a\r\nb"}, body=b"{}")
    with pytest.raises(UpstreamUnavailable) as info:
        await upstream.send(bad, timeout_s=2.0, provider="gemini")
    assert "SECRET" not in info.value.message and "line break" in info.value.message


async def test_upstream_timeout_is_an_upstream_timeout() -> None:
    async with scripted(_silent) as up:
        req = UpstreamRequest(method="POST", url=up.url + "/v1?key=S", headers={}, body=b"{}")
        with pytest.raises(UpstreamTimeout) as info:
            await upstream.send(req, timeout_s=0.2, provider="openai")
    assert info.value.message == "openai error: request to 127.0.0.1 timed out."


@pytest.fixture
def tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


async def test_tls_with_a_trusted_certificate(
    pool: h1.Pool, tls_server: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert_path = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    h1.reset_tls_context()
    try:
        async with scripted(echo, ssl=context) as up:
            assert await _fetch(pool, up.url + "/v1") == b"{}"
            assert await _fetch(pool, up.url + "/v1") == b"{}"
        assert len(up.peers) == 1
        assert up.requests[0].startswith(b"POST /v1 HTTP/1.1\r\nHost: localhost:")
    finally:
        h1.reset_tls_context()


async def test_tls_with_an_untrusted_certificate_is_refused(
    pool: h1.Pool, tls_server: tuple[ssl.SSLContext, Path]
) -> None:
    context, _ = tls_server
    h1.reset_tls_context()
    async with scripted(echo, ssl=context) as up:
        with pytest.raises(h1.ConnectFailed, match="SSLCertVerificationError"):
            await _request(pool, up.url + "/v1")
    assert up.requests == []
