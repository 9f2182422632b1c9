"""Shared fixtures: a real gateway (uvicorn on loopback), fake upstreams, keys, deployments."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import uvicorn

from tests import leaks
from tests.fakes import openai as fake_openai_mod
from tests.fakes.server import BackgroundServer, free_port
from tests.leaks import secret

MASTER_KEY = secret("sk-test-master-key")
UPSTREAM_KEY = secret("sk-upstream-secret-1234567890")


def reset_gateway_caches() -> None:
    from apps.core import changes
    from apps.gateway import tokens
    from apps.keys import auth
    from apps.routing import selectors, shared, state

    state.reset()
    shared.forget()
    auth.clear_cache()
    selectors.clear_cache()
    tokens.clear()
    changes._seen.clear()


class ManualClock:
    """Stands in for ``apps.core.clock``: time moves only by ``advance``."""

    def __init__(self) -> None:
        self._monotonic = 1_000.0
        self._time = time.time()

    def monotonic(self) -> float:
        return self._monotonic

    def time(self) -> float:
        return self._time

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._time, UTC)

    def advance(self, seconds: float) -> None:
        self._monotonic += seconds
        self._time += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> ManualClock:
    """The gateway's clocks under the test's control (expiry and cache-lifetime tests)."""
    from apps.core import clock as gateway_clock

    manual = ManualClock()
    monkeypatch.setattr(gateway_clock, "monotonic", manual.monotonic)
    monkeypatch.setattr(gateway_clock, "time", manual.time)
    monkeypatch.setattr(gateway_clock, "now", manual.now)
    return manual


@dataclass
class GatewayProcess:
    url: str
    server: uvicorn.Server
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run a coroutine on the gateway's event loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def flush_usage(self) -> int:
        """Write every queued usage row now; returns how many were written."""
        from apps.usage.writer import writer

        return int(self.call(writer.flush()))

    def busy(self) -> bool:
        """Whether the gateway is still handling a request (whose usage row is then still to
        come): the server keeps one task per request until the application returns."""

        async def in_flight() -> int:
            return len(self.server.server_state.tasks)

        return bool(self.call(in_flight()))


def _start_uvicorn(app: Any, **config: Any) -> GatewayProcess:
    port = free_port()
    cfg = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        loop="asyncio",
        http="httptools",
        lifespan="on",
        **config,
    )
    server = uvicorn.Server(cfg)
    holder: dict[str, asyncio.AbstractEventLoop] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.serve())

    thread = threading.Thread(target=run, daemon=True, name="gateway-server")
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the gateway did not start")
        time.sleep(0.02)
    return GatewayProcess(
        url=f"http://127.0.0.1:{port}", server=server, loop=holder["loop"], thread=thread
    )


@pytest.fixture(scope="session")
def _gateway_process(django_db_setup: Any, django_db_blocker: Any) -> Iterator[GatewayProcess]:
    from proxy_project.asgi import application

    process = _start_uvicorn(application)
    yield process
    process.server.should_exit = True
    process.thread.join(10)
    from django.db import connections

    for conn in connections.all():
        if hasattr(conn, "close_pool"):
            conn.close_pool()


@pytest.fixture
def gateway_server(
    transactional_db: Any, _gateway_process: GatewayProcess, leak_guard: list[bytes]
) -> Iterator[GatewayProcess]:
    """The running gateway, with clean caches and a database this test owns; no secret may
    reach a client or a log line (``leak_guard``)."""
    reset_gateway_caches()
    yield _gateway_process
    # A request still running (a stream the client left) would finish during the next test,
    # in its counters and its usage rows: wait for the gateway to be idle first.
    deadline = time.monotonic() + 10
    while _gateway_process.busy():
        assert time.monotonic() < deadline, "the gateway still handles a request of this test"
        time.sleep(0.01)
    _gateway_process.flush_usage()
    reset_gateway_caches()


@pytest.fixture(scope="session")
def _fake_openai_server() -> Iterator[tuple[BackgroundServer, fake_openai_mod.FakeOpenAI]]:
    app, fake = fake_openai_mod.make_app()
    server = BackgroundServer(app)
    server.start()
    yield server, fake
    server.stop()


@dataclass
class FakeUpstream:
    url: str
    fake: fake_openai_mod.FakeOpenAI

    @property
    def requests(self) -> list[fake_openai_mod.Recorded]:
        return self.fake.requests


@pytest.fixture
def fake_openai(
    _fake_openai_server: tuple[BackgroundServer, fake_openai_mod.FakeOpenAI],
) -> FakeUpstream:
    server, fake = _fake_openai_server
    fake.reset()
    return FakeUpstream(url=server.url, fake=fake)


@pytest.fixture
def make_deployment(db: Any) -> Callable[..., Any]:
    """Build a deployment (and its group): make_deployment("gpt", "openai", "gpt-4o-mini", ...)."""
    from apps.core.secrets import encrypt
    from apps.routing.models import Deployment, ModelGroup

    def build(
        group: str, provider: str = "openai", model: str = "gpt-4o-mini", **fields: Any
    ) -> Deployment:
        grp, _ = ModelGroup.objects.get_or_create(name=group)
        if "api_key" in fields:
            fields["api_key"] = encrypt(fields["api_key"])
        return Deployment.objects.create(group=grp, provider=provider, model=model, **fields)

    return build


@pytest.fixture
def make_key(db: Any) -> Callable[..., str]:
    """Issue a virtual key and return the raw key: make_key(models=["gpt"], team=...)."""
    from apps.keys.services import key_issue

    def build(**kwargs: Any) -> str:
        return secret(key_issue(**kwargs)[1])

    return build


@pytest.fixture
def openai_client(gateway_server: GatewayProcess) -> Callable[..., Any]:
    """An official OpenAI SDK client for the gateway: openai_client(key)."""
    import openai

    def build(key: str = MASTER_KEY, **kwargs: Any) -> openai.OpenAI:
        return openai.OpenAI(
            base_url=gateway_server.url + "/v1", api_key=key, max_retries=0, **kwargs
        )

    return build


@pytest.fixture
def openai_upstream(
    fake_openai: FakeUpstream, make_deployment: Callable[..., Any]
) -> Callable[..., Any]:
    """Route model group ``group`` to the fake OpenAI upstream with upstream model ``model``."""

    def build(group: str = "gpt", model: str = "gpt-4o-mini", **fields: Any) -> Any:
        fields.setdefault("api_base", fake_openai.url + "/v1")
        fields.setdefault("api_key", UPSTREAM_KEY)
        return make_deployment(group, "openai", model, **fields)

    return build


@pytest.fixture
def router_config(gateway_server: GatewayProcess) -> Callable[..., None]:
    """Set ``router_settings`` (keywords) and ``litellm_settings`` as an imported config would."""
    from apps.core.models import ProxyConfig
    from apps.routing import selectors

    def apply(litellm: dict[str, Any] | None = None, **router: Any) -> None:
        ProxyConfig.objects.update_or_create(
            pk=1, defaults={"router_settings": router, "litellm_settings": litellm or {}}
        )
        selectors.clear_cache()

    return apply


@pytest.fixture
def gateway_http(gateway_server: GatewayProcess) -> Iterator[Any]:
    """A raw HTTP client (httpx2, the SDK's transport) on the gateway, for requests the SDK
    cannot send. Sends the master key unless the request sets its own Authorization."""
    import httpx2

    with httpx2.Client(
        base_url=gateway_server.url,
        headers={"authorization": f"Bearer {MASTER_KEY}"},
        timeout=30,
    ) as client:
        yield client


@pytest.fixture
def leak_guard(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> Iterator[list[bytes]]:
    """Record every header and body byte the gateway sends and every log line; at teardown,
    fail if any secret the tests created (``tests.leaks``) appears in them."""
    from apps.gateway.app import GatewayApp

    original = GatewayApp.__call__
    sent: list[bytes] = []

    async def recording(self: GatewayApp, scope: Any, receive: Any, send: Any) -> None:
        async def send_recorded(message: Any) -> None:
            for name, value in message.get("headers", ()):
                sent.append(bytes(name) + b": " + bytes(value))
            if message.get("body"):
                sent.append(bytes(message["body"]))
            await send(message)

        await original(self, scope, receive, send_recorded)

    monkeypatch.setattr(GatewayApp, "__call__", recording)
    caplog.set_level(logging.DEBUG)
    yield sent
    leaks.check(sent, caplog.records)


@pytest.fixture
def thread_db(transactional_db: Any) -> Iterator[None]:
    """A database that worker threads see (the gateway runs its ORM calls there), with clean
    gateway caches. Afterwards the connection pool those threads used is closed, so the test
    database can be dropped at the end of the run."""
    from django.db import connections

    reset_gateway_caches()
    yield
    reset_gateway_caches()
    for conn in connections.all():
        conn.close()
        if hasattr(conn, "close_pool"):
            conn.close_pool()
