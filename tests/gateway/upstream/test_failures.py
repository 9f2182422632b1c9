"""The upstream transport when things go wrong: each failure is a typed error that tells the
router whether the upstream may have seen the request, and names the host at most."""

from __future__ import annotations

import asyncio
import socket
import ssl
from pathlib import Path

import pytest

from apps.core.errors import (
    UpstreamConnectFailed,
    UpstreamConnectTimeout,
    UpstreamDisconnected,
    UpstreamPoolExhausted,
    UpstreamProtocolError,
    UpstreamTimeout,
    UpstreamTLSError,
)
from apps.gateway import upstream
from tests.gateway.upstream.support import (
    CHUNKED_HEAD,
    Peer,
    answer_each,
    chunk,
    echo,
    fetch,
    post,
    response,
    scripted,
    self_signed_certificate,
    target,
    until,
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_connection_was_never_sent() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1/models/m:generate?key=SECRET-KEY"
    with pytest.raises(UpstreamConnectFailed) as info:
        await fetch(url, provider="gemini")
    assert info.value.message == "gemini error: cannot connect to 127.0.0.1."
    assert info.value.request_sent is False and info.value.retryable


async def test_connect_timeout_was_never_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: object, **kw: object) -> None:
        await asyncio.sleep(30)

    monkeypatch.setattr(asyncio.get_running_loop(), "sock_connect", never)
    monkeypatch.setattr(asyncio.get_running_loop(), "create_connection", never)
    monkeypatch.setattr("apps.core.conf.conf.GATEWAY_CONNECT_TIMEOUT_S", 0.2, raising=False)
    await upstream.close_pool()
    started = asyncio.get_running_loop().time()
    with pytest.raises(UpstreamConnectTimeout) as info:
        await fetch(f"http://127.0.0.1:{free_port()}/")
    assert asyncio.get_running_loop().time() - started < 2.0
    assert info.value.request_sent is False and info.value.http_status == 504


async def test_name_resolution_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fail(*args: object, **kw: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(asyncio.get_running_loop(), "getaddrinfo", fail)
    with pytest.raises(UpstreamConnectFailed) as info:
        await fetch("http://upstream.invalid/v1")
    assert info.value.message == "openai error: cannot resolve upstream.invalid."


async def _silent(peer: Peer) -> None:
    await peer.request()
    await peer.request()  # never answers; returns when the client closes


async def test_no_answer_times_out_and_closes() -> None:
    async with scripted(_silent) as up:
        with pytest.raises(UpstreamTimeout) as info:
            await fetch(up.url + "/v1?key=S", timeout_s=0.2)
        assert await up.peers[0].closed_by_client()
    assert info.value.message == "openai error: request to 127.0.0.1 timed out."
    assert info.value.request_sent is True


async def test_cancelled_while_waiting_closes_the_connection() -> None:
    async with scripted(_silent) as up:
        task = asyncio.create_task(fetch(up.url))
        await until(lambda: up.requests)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await up.peers[0].closed_by_client()


async def test_stream_stalls_between_chunks() -> None:
    async def stall(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        await peer.request()

    async with scripted(stall) as up:
        seen = []
        with pytest.raises(UpstreamTimeout):
            async with upstream.open_stream(post(up.url), target=target(timeout_s=0.2)) as s:
                async for data in s.chunks():
                    seen.append(data)
        assert seen == [b"data: 1\n\n"]
        assert await up.peers[0].closed_by_client()


async def test_a_slowloris_head_times_out_on_a_stream() -> None:
    """One byte of the head every 0.1 s restarts the read timeout; the head as a whole is
    still due within the stream timeout."""

    async def slowloris(peer: Peer) -> None:
        await peer.request()
        for byte in CHUNKED_HEAD * 100:
            await peer.send(bytes([byte]))
            await asyncio.sleep(0.1)

    async with scripted(slowloris) as up:
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout):
            async with upstream.open_stream(post(up.url), target=target(timeout_s=0.5)):
                pytest.fail("the head never completed")
    assert asyncio.get_running_loop().time() - started < 2.0


async def test_closed_mid_body() -> None:
    async def cut(peer: Peer) -> None:
        await peer.request()
        await peer.send(CHUNKED_HEAD + chunk(b"data: 1\n\n"))
        peer.writer.close()

    async with scripted(cut) as up:
        with pytest.raises(UpstreamDisconnected) as info:
            async with upstream.open_stream(post(up.url), target=target()) as s:
                async for _ in s.chunks():
                    pass
        with pytest.raises(UpstreamDisconnected):
            await fetch(up.url)
    assert info.value.request_sent is True


async def test_closed_before_answering_is_not_sent_again() -> None:
    async def hang_up(peer: Peer) -> None:
        await peer.request()
        peer.writer.close()

    async with scripted(hang_up) as up:
        with pytest.raises(UpstreamDisconnected) as info:
            await fetch(up.url)
    assert len(up.requests) == 1
    assert info.value.request_sent is True


async def test_a_post_on_a_reused_connection_is_never_replayed() -> None:
    """Regression: a POST on a kept-alive connection that dropped after the upstream read it
    was sent again on a new connection (three requests seen for two calls: a duplicated,
    billed generation). Now the second call fails as possibly delivered, for the router."""

    async def read_then_drop(peer: Peer) -> None:
        await peer.request()
        await peer.send(response(b"first"))
        await peer.request()  # read the second request...
        peer.writer.transport.abort()  # ...and drop without answering

    async with scripted(read_then_drop) as up:
        assert await fetch(up.url) == b"first"
        with pytest.raises(UpstreamDisconnected) as info:
            await fetch(up.url)
        await asyncio.sleep(0.1)
    assert len(up.requests) == 2
    assert info.value.request_sent is True and info.value.retryable


async def test_malformed_response() -> None:
    async def garbage(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 ok fine\r\n\r\n")
        await peer.request()

    async with scripted(garbage) as up:
        with pytest.raises(UpstreamProtocolError) as info:
            await fetch(up.url)
        assert await up.peers[0].closed_by_client()
    assert info.value.message.startswith("openai error: 127.0.0.1 sent an invalid response")


async def test_a_large_real_header_passes_and_an_absurd_one_is_refused() -> None:
    big = response(b"ok", headers=("x-trace: " + "t" * 12_000,))

    async def absurd(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nx-filler: ")
        for _ in range(200):  # 200 KiB in one header line, and no end in sight
            await peer.send(b"v" * 1024)
        await peer.request()

    async with scripted(lambda p: answer_each(p, lambda h, b: big)) as up:
        resp = await upstream.send(post(up.url), target=target())
        assert resp.body == b"ok" and len(resp.headers["x-trace"]) == 12_000
    async with scripted(absurd) as up:
        with pytest.raises(UpstreamProtocolError):
            await fetch(up.url)
        assert await up.peers[0].closed_by_client()


async def test_exhausted_origin_limit_is_a_503_after_the_queue_timeout(settings: object) -> None:
    settings.GATEWAY_UPSTREAM_CONNECTIONS_PER_ORIGIN = 1  # type: ignore[attr-defined]
    settings.GATEWAY_UPSTREAM_QUEUE_TIMEOUT_S = 0.2  # type: ignore[attr-defined]
    await upstream.close_pool()
    release = asyncio.Event()

    async def slow(peer: Peer) -> None:
        while True:
            head, _ = await peer.request()
            if not head:
                return
            await release.wait()
            await peer.send(response(b"ok"))

    async with scripted(slow) as up:
        first = asyncio.create_task(fetch(up.url))
        await until(lambda: up.requests)
        with pytest.raises(UpstreamPoolExhausted) as info:
            await fetch(up.url)
        release.set()
        assert await first == b"ok"
        assert await fetch(up.url) == b"ok"  # the slot is free again
    assert info.value.http_status == 503 and info.value.request_sent is False
    assert "127.0.0.1" in info.value.message
    assert len(up.requests) == 2


@pytest.fixture
def tls_server(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


async def test_tls_trusted_through_ssl_cert_file(
    tls_server: tuple[ssl.SSLContext, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    context, cert_path = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    await upstream.close_pool()  # a new session builds its context from the environment
    async with scripted(echo, ssl=context) as up:
        assert await fetch(up.url + "/v1") == b"{}"
        assert await fetch(up.url + "/v1") == b"{}"
    assert len(up.peers) == 1
    assert up.requests[0].startswith(b"POST /v1 HTTP/1.1\r\nHost: localhost:")


async def test_tls_untrusted_certificate_is_a_tls_error(
    tls_server: tuple[ssl.SSLContext, Path],
) -> None:
    context, _ = tls_server
    async with scripted(echo, ssl=context) as up:
        with pytest.raises(UpstreamTLSError) as info:
            await fetch(up.url + "/v1")
    assert up.requests == []
    assert info.value.request_sent is False
    assert "TLS handshake with localhost failed" in info.value.message


async def test_tls_wrong_host_is_a_tls_error(tls_server: tuple[ssl.SSLContext, Path]) -> None:
    context, cert_path = tls_server
    async with scripted(echo, ssl=context) as up:
        wrong = up.url.replace("localhost", "127.0.0.1")
        with pytest.raises(UpstreamTLSError, match=r"127\.0\.0\.1"):
            await fetch(wrong + "/v1", params={"ssl_verify": str(cert_path)})
    assert up.requests == []


async def test_per_deployment_ca_bundle_and_ssl_verify_false(
    tls_server: tuple[ssl.SSLContext, Path],
) -> None:
    context, cert_path = tls_server
    async with scripted(echo, ssl=context) as up:
        assert await fetch(up.url + "/v1", params={"ssl_verify": str(cert_path)}) == b"{}"
        assert await fetch(up.url + "/v1", params={"ssl_verify": False}) == b"{}"
        with pytest.raises(UpstreamTLSError):  # other deployments keep verifying
            await fetch(up.url + "/v1")
    with pytest.raises(UpstreamTLSError, match="could not be loaded"):
        await fetch(up.url + "/v1", params={"ssl_verify": "/no/such/bundle.pem"})


async def test_per_deployment_client_certificate(tmp_path: Path) -> None:
    """A private endpoint that asks for a client certificate (mutual TLS)."""
    server_cert, server_key = self_signed_certificate(tmp_path / "server")
    client_cert, client_key = self_signed_certificate(tmp_path / "client")
    bundle = tmp_path / "client-bundle.pem"
    bundle.write_bytes(client_cert.read_bytes() + client_key.read_bytes())
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(client_cert))
    context.load_cert_chain(server_cert, server_key)
    context.verify_mode = ssl.CERT_REQUIRED
    params = {"ssl_verify": str(server_cert), "ssl_certificate": str(bundle)}
    async with scripted(echo, ssl=context) as up:
        assert await fetch(up.url + "/v1", params=params) == b"{}"
        with pytest.raises((UpstreamTLSError, UpstreamDisconnected)):
            await fetch(up.url + "/v1", params={"ssl_verify": str(server_cert)})
