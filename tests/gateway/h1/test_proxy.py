"""The upstream client through an outbound proxy: CONNECT tunnels for https, absolute-form
requests for http, proxy credentials, NO_PROXY, and a proxy that says no."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from apps.core.errors import UpstreamUnavailable
from apps.gateway import h1, upstream
from apps.providers.schemas import UpstreamRequest
from tests.gateway.h1.support import echo, loopback_server, scripted, self_signed_certificate


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


def _pool(settings: h1.ProxySettings) -> h1.Pool:
    return h1.Pool(asyncio.get_running_loop(), settings)


async def _fetch(pool: h1.Pool, url: str) -> bytes:
    resp = await pool.request(
        "POST", url, {"x": "y"}, b"hello", connect_timeout=5.0, head_deadline=None
    )
    body = await resp.read(None)
    resp.release()
    return body


CREDENTIALS = "Proxy-Authorization: Basic " + base64.b64encode(b"user:s@cret").decode()


async def test_http_upstream_through_a_forwarding_proxy() -> None:
    async with fake_proxy() as proxy, scripted(echo) as up:
        pool = _pool(h1.ProxySettings({"http": h1.parse_proxy(proxy.url)}))
        try:
            assert await _fetch(pool, up.url + "/v1/chat?x=1") == b"hello"
            assert await _fetch(pool, up.url + "/v1/chat?x=1") == b"hello"
        finally:
            pool.close()
    port = up.url.rsplit(":", 1)[1]
    assert len(proxy.heads) == 1  # one kept-alive connection to the proxy for both
    assert proxy.heads[0].startswith(
        b"POST http://127.0.0.1:%s/v1/chat?x=1 HTTP/1.1\r\n" % port.encode()
    )
    assert CREDENTIALS.encode() + b"\r\n" in proxy.heads[0]
    assert up.requests[0].startswith(b"POST /v1/chat?x=1 HTTP/1.1\r\n")


@pytest.fixture
def trusted_tls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ssl.SSLContext:
    cert_path, key_path = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert_path))
    h1.reset_tls_context()
    yield context  # type: ignore[misc]
    h1.reset_tls_context()


async def test_https_upstream_through_a_connect_tunnel(trusted_tls: ssl.SSLContext) -> None:
    async with fake_proxy() as proxy, scripted(echo, ssl=trusted_tls) as up:
        pool = _pool(h1.ProxySettings({"https": h1.parse_proxy(proxy.url)}))
        try:
            assert await _fetch(pool, up.url + "/v1") == b"hello"
            assert await _fetch(pool, up.url + "/v1") == b"hello"
        finally:
            pool.close()
    port = up.url.rsplit(":", 1)[1]
    assert len(proxy.heads) == 1  # one tunnel; the proxy saw nothing but CONNECT
    assert proxy.heads[0] == (
        b"CONNECT localhost:%s HTTP/1.1\r\nHost: localhost:%s\r\n%s\r\n\r\n"
        % (port.encode(), port.encode(), CREDENTIALS.encode())
    )
    assert up.requests[0].startswith(b"POST /v1 HTTP/1.1\r\nHost: localhost:")
    assert b"Proxy-Authorization" not in up.requests[0]


async def test_a_refused_tunnel_names_the_proxy_not_its_credentials(
    trusted_tls: ssl.SSLContext,
) -> None:
    async with fake_proxy(refuse=407) as proxy, scripted(echo, ssl=trusted_tls) as up:
        pool = _pool(h1.ProxySettings({"https": h1.parse_proxy(proxy.url)}))
        try:
            with pytest.raises(h1.ConnectFailed) as info:
                await _fetch(pool, up.url + "/v1")
        finally:
            pool.close()
    assert "407" in str(info.value) and info.value.host == "127.0.0.1"
    assert "cret" not in str(info.value)
    assert up.requests == []


async def test_no_proxy_hosts_are_reached_directly() -> None:
    async with fake_proxy() as proxy, scripted(echo) as up:
        settings = h1.ProxySettings({"http": h1.parse_proxy(proxy.url)}, "localhost,127.0.0.1")
        pool = _pool(settings)
        try:
            assert await _fetch(pool, up.url + "/v1") == b"hello"
        finally:
            pool.close()
    assert proxy.heads == [] and len(up.requests) == 1


def test_proxies_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://u:p%3Aw@proxy.corp:3128")
    monkeypatch.setenv("http_proxy", "proxy.corp:8080")
    monkeypatch.setenv("NO_PROXY", "localhost,.internal")
    settings = h1.ProxySettings.from_environment()
    https = settings.by_scheme["https"]
    assert (https.scheme, https.host, https.port) == ("http", "proxy.corp", 3128)
    assert https.authorization == "Basic " + base64.b64encode(b"u:p:w").decode()
    assert "p:w" not in repr(https) and "dTpw" not in repr(https)
    assert settings.by_scheme["http"].port == 8080
    assert settings.by_scheme["http"].authorization is None
    assert settings.for_origin(("https", "api.openai.com", 443)) is https
    assert settings.for_origin(("https", "llm.internal", 443)) is None
    assert settings.for_origin(("http", "localhost", 11434)) is None


@pytest.mark.parametrize("url", ["ftp://proxy:21", "http://", "http://proxy:notaport"])
def test_a_bad_proxy_url_is_refused(url: str) -> None:
    with pytest.raises(h1.InvalidRequest):
        h1.parse_proxy(url)


async def test_the_gateway_pool_uses_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    async with fake_proxy() as proxy, scripted(echo) as up:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        await upstream.close_pool()  # a new pool reads the environment
        try:
            req = UpstreamRequest(method="POST", url=up.url + "/v1", headers={}, body=b"hi")
            resp = await upstream.send(req, timeout_s=5.0, provider="openai")
            assert resp.body == b"hi"
            bad = UpstreamRequest(method="POST", url="http://127.0.0.1:9/v1", headers={}, body=b"")
            with pytest.raises(UpstreamUnavailable) as info:
                await upstream.send(bad, timeout_s=5.0, provider="openai")
            assert "cret" not in info.value.message
        finally:
            await upstream.close_pool()
    assert len(proxy.heads) == 2


async def test_a_bad_proxy_setting_fails_calls_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret@proxy.corp:1080")
    await upstream.close_pool()
    try:
        req = UpstreamRequest(method="POST", url="https://api.example/v1", headers={}, body=b"")
        with pytest.raises(UpstreamUnavailable) as info:
            await upstream.send(req, timeout_s=5.0, provider="openai")
    finally:
        monkeypatch.delenv("HTTPS_PROXY")
        await upstream.close_pool()
    assert info.value.message == (
        "openai error: request to api.example not sent: "
        "HTTPS_PROXY is not an http:// or https:// URL."
    )


def test_a_bad_proxy_setting_is_reported_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HTTP_PROXY", raising=False)
    monkeypatch.delenv("http_proxy", raising=False)
    monkeypatch.setenv("https_proxy", "http://proxy.corp:3128")
    assert upstream.configuration_error() is None
    monkeypatch.setenv("HTTP_PROXY", "http://user:secret@proxy.corp:port")
    assert upstream.configuration_error() == "HTTP_PROXY is not an http:// or https:// URL"
