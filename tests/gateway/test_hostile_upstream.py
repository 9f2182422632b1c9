"""Upstreams that misbehave on purpose, on loopback, against the running gateway.

Each test asserts the client's answer (in its own format, never a 500), how long it took, and
that requests to a healthy deployment kept being answered quickly meanwhile (the prober): a
hostile upstream may fail its own calls, never the gateway.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MASTER_KEY
from tests.gateway.helpers import CHAT, E2E, HELLO, openai_error, sse_data
from tests.gateway.hostile_support import (
    Prober,
    Upstream,
    black_hole,
    free_port,
    gzip_bomb,
    hostile,
    rss_mib,
)
from tests.gateway.upstream.support import self_signed_certificate

pytestmark = E2E

OK_BODY = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"fine"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)


def ok_response(extra_headers: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + extra_headers
        + b"Content-Length: %d\r\n\r\n" % len(OK_BODY)
        + OK_BODY
    )


@pytest.fixture
def deploy(gateway_server: Any, make_deployment: Callable[..., Any]) -> Callable[..., Any]:
    """Deploy the hostile upstream as group ``hostile`` and a local model as ``healthy``."""

    def build(url: str, **fields: Any) -> Any:
        make_deployment("healthy", "mock", "echo-1")
        fields.setdefault("api_key", "upstream-key")
        return make_deployment("hostile", "openai", "m", api_base=url + "/v1", **fields)

    return build


def ask(gateway_http: Any, stream: bool = False) -> tuple[Any, bytes, float]:
    """(response, raw body, seconds) of one call to the hostile group."""
    body = {"model": "hostile", "messages": HELLO, "stream": stream}
    started = time.monotonic()
    with gateway_http.stream("POST", CHAT, json=body) as response:
        raw = response.read()
    return response, raw, time.monotonic() - started


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = openai_error(response)
    assert error["code"] == code, error
    assert "upstream-key" not in response.text
    return error


def test_huge_header_line_is_refused_at_once(deploy: Any, gateway_http: Any) -> None:
    """Regression: a 100 MB header line was buffered whole (seconds of CPU, quadratic)."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        await up.send(writer, b"HTTP/1.1 200 OK\r\nX-Big: ")
        for _ in range(100):
            await up.send(writer, b"v" * (1 << 20))

    with hostile(handler) as up:
        deploy(up.url)
        with Prober(*_probe_args(gateway_http)) as probe:
            response, _, elapsed = ask(gateway_http)
    assert_error(response, 502, "upstream_protocol_error")
    assert elapsed < 2.0
    assert up.bytes_sent < 20 << 20  # refused long before the line ended
    probe.assert_not_stalled()


def _probe_args(gateway_http: Any) -> tuple[str, str, str]:
    return str(gateway_http.base_url).rstrip("/"), MASTER_KEY, "healthy"


def test_a_real_providers_large_header_passes(deploy: Any, gateway_http: Any) -> None:
    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, ok_response(b"X-Trace: " + b"t" * 12_000 + b"\r\n"))

    with hostile(handler) as up:
        deploy(up.url)
        response, _, _ = ask(gateway_http)
    assert response.status_code == 200 and response.json()["choices"][0]["message"]


@pytest.mark.parametrize("stream", [False, True])
def test_gzip_bomb_is_bounded(deploy: Any, gateway_http: Any, stream: bool) -> None:
    """Regression: 1 MB on the wire inflating to 1 GiB was decoded without a bound (+2 GB,
    other requests stalled 7-10 s, stream pieces of 257 MiB)."""
    bomb = gzip_bomb()

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        kind = b"text/event-stream" if stream else b"application/json"
        await up.send(
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Type: " + kind + b"\r\nContent-Encoding: gzip\r\n"
            b"Content-Length: %d\r\n\r\n" % len(bomb),
        )
        for n in range(0, len(bomb), 65536):
            await up.send(writer, bomb[n : n + 65536])

    before = rss_mib()
    with hostile(handler) as up:
        deploy(up.url)
        with Prober(*_probe_args(gateway_http)) as probe:
            response, raw, elapsed = ask(gateway_http, stream=stream)
    grown = rss_mib() - before
    if stream:
        assert response.status_code == 200
        assert b"[DONE]" not in raw and b"stream event over" in sse_data(raw)[-1]
    else:
        assert_error(response, 502, "upstream_protocol_error")
        assert "larger than" in openai_error(response)["message"]
    assert elapsed < 10.0
    assert grown < 300, grown  # the 64 MiB answer cap or the 32 MiB event cap, not 1 GiB
    probe.assert_not_stalled(worst_s=2.0)


def test_bytes_after_a_complete_response_are_not_part_of_it(deploy: Any, gateway_http: Any) -> None:
    """Regression: bytes after a complete response in the same packet were joined onto its
    body, into the client's answer. aiohttp's parser reads them as the start of a next
    response and fails the exchange as a protocol error: never part of an answer."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, ok_response() + b"data: injected\n\nHTTP/1.1 200 OK\r\n")

    with hostile(handler) as up:
        deploy(up.url)
        answers = [ask(gateway_http) for _ in range(3)]
    for response, raw, elapsed in answers:
        assert b"injected" not in raw and elapsed < 2.0
        if response.status_code != 200:
            assert_error(response, 502, "upstream_protocol_error")
        else:
            assert response.json()["choices"][0]["message"]["content"] == "fine"


def test_a_post_the_upstream_read_is_never_replayed(deploy: Any, gateway_http: Any) -> None:
    """Regression: a POST whose reused connection dropped after the upstream read it was sent
    again (3 requests seen for 2 calls: a duplicated, billed generation)."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        await up.send(writer, ok_response())
        await up.read_request(reader)
        writer.transport.abort()

    with hostile(handler) as up:
        deploy(up.url)
        first, _, _ = ask(gateway_http)
        second, _, elapsed = ask(gateway_http)
        time.sleep(0.2)
    assert first.status_code == 200
    assert_error(second, 502, "upstream_disconnected")
    assert up.requests == 2 and elapsed < 2.0


def test_a_black_holed_first_address_falls_to_the_next(
    deploy: Any, gateway_http: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression: the call waited the full connect timeout (10 s) on the first address."""
    port = free_port()
    name = f"twice-{port}.test"
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == name:
            stream, tcp = socket.SOCK_STREAM, socket.IPPROTO_TCP
            return [
                (socket.AF_INET, stream, tcp, "", ("127.0.0.2", port)),
                (socket.AF_INET, stream, tcp, "", ("127.0.0.1", port)),
            ]
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, ok_response())

    with black_hole("127.0.0.2", port), hostile(handler, port=port, name=name) as up:
        deploy(up.url)
        response, _, elapsed = ask(gateway_http)
    assert response.status_code == 200
    assert elapsed < 2.0


@pytest.mark.parametrize(
    ("head", "code"),
    [
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\n\r\n",
            "upstream_protocol_error",
        ),
        (
            b"HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:9/steal\r\nContent-Length: 5\r\n\r\n"
            b"moved",
            "upstream_protocol_error",
        ),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "upstream_protocol_error"),
        (b"\x16\x03\x01\x00\xa5garbage that is not HTTP\r\n\r\n", "upstream_protocol_error"),
    ],
    ids=["101", "302", "ssh", "binary"],
)
def test_answers_that_are_not_a_final_http_response(
    deploy: Any, gateway_http: Any, head: bytes, code: str
) -> None:
    """Regression: a 101 was an uncaught parser exception; a 3xx reached the client as a 200
    with the redirect's body."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):  # until the gateway closes
            await up.send(writer, head)

    with hostile(handler) as up:
        deploy(up.url)
        for stream in (False, True):
            response, _, elapsed = ask(gateway_http, stream=stream)
            assert_error(response, 502, code)
            assert elapsed < 2.0
    assert up.requests == 2  # one per call: a redirect is never followed


def test_informational_answers_before_the_final_one(deploy: Any, gateway_http: Any) -> None:
    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n")
            await up.send(writer, b"HTTP/1.1 100 Continue\r\n\r\n" + ok_response())

    with hostile(handler) as up:
        deploy(up.url)
        response, _, _ = ask(gateway_http)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "fine"


def test_reset_mid_body(deploy: Any, gateway_http: Any) -> None:
    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        await up.send(writer, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"{" * 100)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    with hostile(handler) as up:
        deploy(up.url)
        response, _, elapsed = ask(gateway_http)
    assert_error(response, 502, "upstream_disconnected")
    assert elapsed < 2.0


@pytest.mark.parametrize("stream", [False, True])
def test_never_answering_times_out(deploy: Any, gateway_http: Any, stream: bool) -> None:
    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        await up.read_request(reader)

    with hostile(handler) as up:
        deploy(up.url, timeout=1.0)
        with Prober(*_probe_args(gateway_http)) as probe:
            response, _, elapsed = ask(gateway_http, stream=stream)
        assert up.closed.wait(5)  # the gateway hung up
    assert_error(response, 504, "upstream_timeout")
    assert 0.9 < elapsed < 3.0
    probe.assert_not_stalled()


@pytest.mark.parametrize("stream", [False, True])
def test_slowloris_head_times_out(deploy: Any, gateway_http: Any, stream: bool) -> None:
    """A head dribbled one byte at a time must not hold a call past its timeout (a stream's
    read timeout alone restarts with every byte)."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        for byte in b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"s" * 1000:
            await up.send(writer, bytes([byte]))
            await asyncio.sleep(0.1)

    with hostile(handler) as up:
        deploy(up.url, timeout=1.0)
        response, _, elapsed = ask(gateway_http, stream=stream)
    assert_error(response, 504, "upstream_timeout")
    assert elapsed < 3.0


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[ssl.SSLContext, Path]:
    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"], ids=["self-signed", "wrong-host"])
def test_tls_failures_are_reported_as_tls(
    deploy: Any, gateway_http: Any, tls_files: tuple[ssl.SSLContext, Path], host: str
) -> None:
    """Regression: TLS failures read as "cannot connect"."""
    context, cert = tls_files

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, ok_response())

    with hostile(handler, tls=context, name=host) as up:
        # The wrong-host case trusts the certificate (made for localhost) but not the name.
        deploy(up.url, extra_params={"ssl_verify": str(cert)} if host != "localhost" else {})
        response, _, elapsed = ask(gateway_http)
    error = assert_error(response, 502, "upstream_tls_error")
    assert "TLS handshake" in error["message"] and elapsed < 2.0
    assert up.requests == 0


def test_a_100_mb_stream_to_a_slow_reader_keeps_memory_bounded(
    deploy: Any, gateway_server: Any
) -> None:
    """The client stops reading: back-pressure reaches the upstream instead of the gateway
    buffering the stream; when the client leaves, the upstream connection is closed."""
    event = b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m",' + (
        b'"choices":[{"index":0,"delta":{"content":"' + b"x" * 900 + b'"}}]}\n\n'
    )
    total = 100 << 20

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        await up.read_request(reader)
        await up.send(
            writer,
            b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
            b"Content-Length: %d\r\n\r\n" % (total // len(event) * len(event)),
        )
        batch = event * 64
        for _ in range(total // len(batch)):
            await up.send(writer, batch)

    import httpx2

    with hostile(handler) as up:
        deploy(up.url)
        before = rss_mib()
        body = {"model": "hostile", "messages": HELLO, "stream": True}
        headers = {"authorization": f"Bearer {MASTER_KEY}"}
        with (
            httpx2.Client(base_url=gateway_server.url, headers=headers, timeout=30) as http,
            http.stream("POST", CHAT, json=body) as response,
        ):
            assert response.status_code == 200
            pieces = response.iter_raw(65536)
            next(pieces)
            time.sleep(2.0)  # a reader that stopped reading
            sent, grown = up.bytes_sent, rss_mib() - before
        assert up.closed.wait(5)  # the client left: the upstream was hung up on
    assert sent < 40 << 20, sent  # socket buffers, not the whole stream
    assert grown < 64, grown


WILDCARDS = [
    ("gemini", "/v1beta", {}),
    ("vertex_ai", "", {"extra_params": {"vertex_project": "p", "vertex_location": "us-central1"}}),
    ("azure", "", {"api_version": "2024-10-21"}),
    ("bedrock", "", {"extra_params": {"aws_region_name": "us-east-1"}}),
]


@pytest.mark.parametrize(("provider", "path", "fields"), WILDCARDS, ids=[w[0] for w in WILDCARDS])
@pytest.mark.parametrize("name", ["../../v1/admin?key=1", "..", "x#frag", "a\\b"])
def test_a_path_traversal_model_name_never_reaches_the_upstream(
    gateway_server: Any,
    gateway_http: Any,
    make_deployment: Callable[..., Any],
    provider: str,
    path: str,
    fields: dict[str, Any],
    name: str,
) -> None:
    """Regression: through a wildcard group a client could put ``../`` or a query into the
    URL of a request carrying the gateway's credentials (Gemini, Vertex)."""

    async def handler(up: Upstream, reader: Any, writer: Any) -> None:
        while await up.read_request(reader):
            await up.send(writer, ok_response())

    with hostile(handler) as up:
        make_deployment(
            f"{provider}/*", provider, "*", api_base=up.url + path, api_key="ya29.k", **fields
        )
        body = {"model": f"{provider}/{name}", "messages": HELLO}
        response = gateway_http.post(CHAT, json=body)
    assert_error(response, 400, "invalid_model_name")
    assert up.requests == 0
