"""The upstream transport through an outbound proxy: CONNECT tunnels for https, absolute-form
requests for http, proxy credentials, NO_PROXY, and a proxy that says no."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from yarl import URL

from apps.core.errors import UpstreamConnectFailed
from apps.gateway import upstream
from apps.gateway.upstream.proxy import InvalidProxy, Proxies, parse_proxy
from tests.gateway.upstream.support import (
    echo,
    fetch,
    loopback_server,
    scripted,
    self_signed_certificate,
)


@dataclass
class FakeProxy:
    url: str
    heads: list[bytes] = field(default_factory=list)  # what the gateway sent the proxy
    refuse: int | None = None  # answer CONNECT with this status instead


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.close()


@contextlib.asynccontextmanager
async def fake_proxy(refuse: int | None = None) -> AsyncIterator[FakeProxy]:
    """A forward proxy: CONNECT opens a tunnel; any other request line names the upstream
    in absolute form and is passed on in origin form, the connection then piped."""
    state = FakeProxy(url="", refuse=refuse)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            state.heads.append(head)
            method, where, _ = head.split(b"\r\n", 1)[0].split(b" ", 2)
            if method == b"CONNECT":
                if state.refuse:
                    writer.write(b"HTTP/1.1 %d No\r\nContent-Length: 0\r\n\r\n" % state.refuse)
                    await writer.drain()
                    return
                host, port = where.rsplit(b":", 1)
                up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                rest = where.split(b"://", 1)[1]
                authority, _, path = rest.partition(b"/")
                host, port = authority.rsplit(b":", 1)
                up_reader, up_writer = await asyncio.open_connection(host.decode(), int(port))
                up_writer.write(head.replace(where, b"/" + path, 1))
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass

    async with loopback_server(handle) as port:
        state.url = f"http://user:s%40cret@127.0.0.1:{port}"
        yield state


CREDENTIALS = "Proxy-Authorization: Basic " + base64.b64encode(b"user:s@cret").decode()


async def test_http_upstream_through_a_forwarding_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    async with fake_proxy() as proxy, scripted(echo) as up:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert await fetch(up.url + "/v1/chat?x=1", b"hello") == b"hello"
        assert await fetch(up.url + "/v1/chat?x=1", b"hello") == b"hello"
    port = up.url.rsplit(":", 1)[1]
    assert len(proxy.heads) == 1  # one kept-alive connection to the proxy for both
    assert proxy.heads[0].startswith(
        b"POST http://127.0.0.1:%s/v1/chat?x=1 HTTP/1.1\r\n" % port.encode()
    )
    assert CREDENTIALS.encode() + b"\r\n" in proxy.heads[0]
    assert up.requests[0].startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")


@pytest.fixture
async def trusted_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    await upstream.close_pool()
    return context


async def test_https_upstream_through_a_connect_tunnel(
    trusted_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fake_proxy() as proxy, scripted(echo, ssl=trusted_tls) as up:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        assert await fetch(up.url + "/v1", b"hello") == b"hello"
        assert await fetch(up.url + "/v1", b"hello") == b"hello"
    port = up.url.rsplit(":", 1)[1].encode()
    assert len(proxy.heads) == 1  # one tunnel; the proxy saw nothing but CONNECT
    assert proxy.heads[0].startswith(b"CONNECT localhost:%s HTTP/1.1\r\n" % port)
    assert CREDENTIALS.encode() + b"\r\n" in proxy.heads[0]
    assert up.requests[0].startswith(b"POST /v1 HTTP/1.1\r\nHost: localhost:")
    assert b"Proxy-Authorization" not in up.requests[0]


async def test_a_refused_tunnel_names_the_proxy_not_its_credentials(
    trusted_tls: ssl.SSLContext, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with fake_proxy(refuse=407) as proxy, scripted(echo, ssl=trusted_tls) as up:
        monkeypatch.setenv("HTTPS_PROXY", proxy.url)
        with pytest.raises(UpstreamConnectFailed) as info:
            await fetch(up.url + "/v1")
    assert "407" in info.value.message and "localhost" in info.value.message
    assert "cret" not in info.value.message and info.value.request_sent is False
    assert up.requests == []


async def test_no_proxy_hosts_are_reached_directly(monkeypatch: pytest.MonkeyPatch) -> None:
    async with fake_proxy() as proxy, scripted(echo) as up:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        assert await fetch(up.url + "/v1", b"hello") == b"hello"
    assert proxy.heads == [] and len(up.requests) == 1


async def test_an_unreachable_proxy_is_a_connect_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("HTTP_PROXY", f"http://user:secret@127.0.0.1:{port}")
    with pytest.raises(UpstreamConnectFailed) as info:
        await fetch("http://api.example/v1")
    assert "secret" not in info.value.message and info.value.request_sent is False


def test_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://u:p%3Aw@proxy.corp:3128")
    monkeypatch.setenv("http_proxy", "proxy.corp:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    settings = Proxies.from_environment()
    https = settings.by_scheme["https"]
    assert str(https.url) == "http://proxy.corp:3128"
    assert https.headers == {"Proxy-Authorization": "Basic " + base64.b64encode(b"u:p:w").decode()}
    assert "p:w" not in repr(https) and "dTpw" not in repr(https)
    assert settings.by_scheme["http"].url.port == 8080
    assert settings.by_scheme["http"].headers is None
    assert settings.for_url(URL("https://api.openai.com/v1")) is https
    assert settings.for_url(URL("https://llm.internal/v1")) is None
    assert settings.for_url(URL("http://localhost:11434/v1")) is None


@pytest.mark.parametrize("url", ["ftp://proxy:21", "http://", "http://proxy:notaport"])
def test_a_bad_proxy_url_is_refused(url: str) -> None:
    with pytest.raises(InvalidProxy):
        parse_proxy(url)


async def test_a_bad_proxy_setting_fails_calls_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.corp:1080")
    with pytest.raises(UpstreamConnectFailed) as info:
        await fetch("https://api.example/v1")
    assert info.value.message == (
        "openai error: request to api.example not sent: "
        "HTTPS_PROXY is not an http:// or https:// URL."
    )


def test_a_bad_proxy_setting_is_reported_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    assert upstream.configuration_error() is None
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@proxy.corp:port")
    assert upstream.configuration_error() == "HTTP_PROXY is not an http:// or https:// URL"
