"""Loopback upstreams that misbehave on purpose, and a prober that measures whether other
requests on the gateway stall meanwhile (for ``test_hostile_upstream``)."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any

Handler = Callable[["Upstream", asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class Upstream:
    url: str
    port: int
    requests: int = 0  # request heads read
    bytes_sent: int = 0
    closed: threading.Event = field(default_factory=threading.Event)  # a connection ended

    async def read_request(self, reader: asyncio.StreamReader) -> bytes:
        """The next request (head and body); b"" when the gateway closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return b""
        self.requests += 1
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        return head + (await reader.readexactly(length) if length else b"")

    async def send(self, writer: asyncio.StreamWriter, data: bytes) -> None:
        writer.write(data)
        await writer.drain()
        self.bytes_sent += len(data)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def hostile(
    handler: Handler,
    *,
    tls: ssl.SSLContext | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    name: str | None = None,
) -> Iterator[Upstream]:
    """Serve ``handler`` on a loopback port from a thread of its own (so that a stalled
    gateway cannot stall it), until the block ends."""
    port = port or free_port(host)
    scheme = "https" if tls is not None else "http"
    state = Upstream(url=f"{scheme}://{name or host}:{port}", port=port)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop: dict[str, Any] = {}

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(state, reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            state.closed.set()
            writer.close()

    async def serve() -> None:
        server = await asyncio.start_server(on_connect, host, port, ssl=tls)
        stop["event"] = asyncio.Event()
        ready.set()
        await stop["event"].wait()
        server.close()
        for task in asyncio.all_tasks() - {asyncio.current_task()}:
            task.cancel()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(5), "the hostile upstream did not start"
    try:
        yield state
    finally:
        loop.call_soon_threadsafe(stop["event"].set)
        thread.join(5)


@contextlib.contextmanager
def black_hole(host: str, port: int) -> Iterator[None]:
    """A listening socket whose accept queue is full: the kernel drops every further SYN, as a
    firewall that drops packets does (a connect hangs until its timeout)."""
    listener = socket.socket()
    listener.bind((host, port))
    listener.listen(0)
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            filler.connect((host, port))
        fillers.append(filler)
    time.sleep(0.05)
    try:
        yield
    finally:
        for sock in [*fillers, listener]:
            sock.close()


class Prober:
    """Sends a small request to a healthy group on the gateway every few milliseconds from a
    thread of its own, and records how long each took."""

    def __init__(self, url: str, key: str, model: str) -> None:
        self.url, self.key, self.model = url, key, model
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        import httpx2

        body = {"model": self.model, "messages": [{"role": "user", "content": "ping"}]}
        with httpx2.Client(headers={"authorization": f"Bearer {self.key}"}, timeout=30) as http:
            while not self._stop.is_set():
                started = time.monotonic()
                response = http.post(self.url + "/v1/chat/completions", json=body)
                self.latencies.append(time.monotonic() - started)
                if response.status_code != 200:
                    self.failures.append(f"{response.status_code} {response.text[:200]}")
                time.sleep(0.02)

    def __enter__(self) -> Prober:
        """Starts probing; returns once the first probe was answered (the gateway is warm)."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.latencies and not self.failures:
            assert time.monotonic() < deadline, "the first probe was not answered"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)

    def assert_not_stalled(self, worst_s: float = 1.5) -> None:
        """Every probe answered 200, none took longer than ``worst_s`` (a stalled event loop
        shows as seconds here)."""
        assert not self.failures, self.failures[:3]
        assert self.latencies, "no probe was answered"
        assert max(self.latencies) < worst_s, sorted(self.latencies)[-5:]


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@cache
def gzip_bomb(inflated: int = 1 << 30) -> bytes:
    """``inflated`` zero bytes, gzip-compressed: 1 GiB inflates from about 1 MB, as gzip
    members of 16 MiB each (one compressed once, repeated)."""
    block = 16 << 20
    member = gzip.compress(bytes(block), compresslevel=9)
    return member * (inflated // block)
