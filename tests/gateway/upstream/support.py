"""A scripted HTTP/1.1 server on loopback for the upstream transport's tests: each connection is
handed to a test-supplied coroutine that reads the request and writes exact bytes back."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from apps.gateway import upstream
from apps.providers.schemas import Target, UpstreamRequest

Handler = Callable[["Peer"], Awaitable[None]]


@dataclass
class Peer:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    number: int  # which connection this is, from 1
    gone: asyncio.Event = field(default_factory=asyncio.Event)  # the client closed

    async def request(self) -> tuple[bytes, bytes]:
        """(head, body) of the next request; (b"", b"") when the client closed."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            self.gone.set()
            return b"", b""
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await self.reader.readexactly(length) if length else b""
        return head, body

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_client(self, timeout: float = 5.0) -> bool:
        """True when the client closes the connection within ``timeout`` (seen by a handler
        waiting in ``request``)."""
        try:
            async with asyncio.timeout(timeout):
                await self.gone.wait()
                return True
        except TimeoutError:
            return False


@dataclass
class Scripted:
    url: str
    peers: list[Peer] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)  # heads, in arrival order


def response(body: bytes = b"{}", status: str = "200 OK", headers: tuple[str, ...] = ()) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


CHUNKED_HEAD = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
)
LAST_CHUNK = b"0\r\n\r\n"


async def answer_each(peer: Peer, make: Callable[[bytes, bytes], bytes]) -> None:
    """Answer every request on the connection with ``make(head, body)``."""
    while True:
        head, body = await peer.request()
        if not head:
            return
        await peer.send(make(head, body))


Connected = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def loopback_server(on_connect: Connected, ssl: object = None) -> AsyncIterator[int]:
    """Serve ``on_connect`` on a free loopback port (yielded); on the way out, stop listening
    and cancel the handlers of connections still open."""
    tasks: set[asyncio.Task[None]] = set()

    async def tracked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        try:
            await on_connect(reader, writer)
        except asyncio.CancelledError:
            pass
        finally:
            tasks.discard(task)
            writer.close()

    server = await asyncio.start_server(tracked, "127.0.0.1", 0, ssl=ssl)  # type: ignore[arg-type]
    try:
        yield int(server.sockets[0].getsockname()[1])
    finally:
        server.close()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


@contextlib.asynccontextmanager
async def scripted(handler: Handler, ssl: object = None) -> AsyncIterator[Scripted]:
    state = Scripted(url="")

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(reader, writer, len(state.peers) + 1)
        state.peers.append(peer)
        original = peer.request

        async def recording() -> tuple[bytes, bytes]:
            head, body = await original()
            if head:
                state.requests.append(head)
            return head, body

        peer.request = recording  # type: ignore[method-assign]
        try:
            await handler(peer)
        except (ConnectionError, asyncio.IncompleteReadError):
            peer.gone.set()  # a write or read failed: the client went away

    async with loopback_server(on_connect, ssl) as port:
        host = "localhost" if ssl is not None else "127.0.0.1"
        state.url = f"{'https' if ssl is not None else 'http'}://{host}:{port}"
        yield state


async def echo(peer: Peer) -> None:
    """Answer every request on the connection with a 200 carrying the request's own body."""
    await answer_each(peer, lambda head, body: response(body))


def self_signed_certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A certificate for ``localhost`` and its key, as PEM files (trusted via SSL_CERT_FILE)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def target(**kwargs: object) -> Target:
    """A deployment to call in these tests (short timeouts, no credentials)."""
    fields: dict[str, object] = {
        "deployment_id": "d1",
        "provider": "openai",
        "model": "m",
        "timeout_s": 5.0,
    }
    fields.update(kwargs)
    return Target(**fields)  # type: ignore[arg-type]


def post(url: str, body: bytes = b"{}", headers: dict[str, str] | None = None) -> UpstreamRequest:
    return UpstreamRequest(method="POST", url=url, headers=headers or {"x": "y"}, body=body)


async def fetch(url: str, body: bytes = b"{}", **kwargs: object) -> bytes:
    """POST ``body`` to ``url`` and return the answer's body."""
    resp = await upstream.send(post(url, body), target=target(**kwargs))
    return resp.body


async def until(condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Wait until ``condition()`` is true, failing after ``timeout`` seconds."""
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)
