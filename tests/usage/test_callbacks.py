"""Webhook callbacks: one signed JSON event per call to the configured URLs, retried with
backoff, never slowing the calls."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson
import pytest
from aiohttp import web

from apps.core.models import ProxyConfig
from apps.usage import callbacks
from tests.fakes.server import BackgroundServer
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows, wait_until

pytestmark = E2E


class Receiver:
    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, str], bytes]] = []
        self.fail_next = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.fail_next:
            self.fail_next -= 1
            return web.Response(status=503)
        self.posts.append((request.path, {k.lower(): v for k, v in request.headers.items()}, body))
        return web.Response(status=204)

    def events(self, path: str) -> list[dict[str, Any]]:
        return [e for p, _h, b in self.posts if p == path for e in orjson.loads(b)]


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    app = web.Application()
    app.router.add_post("/{name}", hook.handle)
    server = BackgroundServer(app)
    server.start()
    yield hook, server.url
    server.stop()
    callbacks.dispatcher.invalidate()


def configure(**settings: Any) -> None:
    ProxyConfig.objects.update_or_create(pk=1, defaults={"litellm_settings": settings})
    callbacks.dispatcher.invalidate()


def test_each_call_sends_one_signed_event_to_its_webhook(
    gateway_server, gateway_http, openai_upstream, receiver, settings
):
    hook, url = receiver
    settings.GATEWAY_CALLBACK_SECRET = "shared-secret"
    configure(
        success_callback=[url + "/ok"],
        failure_callback=[{"url": url + "/failed", "secret": "own-secret"}],
    )
    openai_upstream("gpt", "gpt-4o-mini")
    ok = [gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}) for _ in range(3)]
    bad = gateway_http.post(CHAT, json={"model": "nope", "messages": HELLO})
    rows = usage_rows(gateway_server, 4)
    wait_until(lambda: len(hook.events("/ok")) == 3 and len(hook.events("/failed")) == 1)
    assert {e["request_id"] for e in hook.events("/ok")} == {r.headers["x-request-id"] for r in ok}
    [failure] = hook.events("/failed")
    assert failure["request_id"] == bad.headers["x-request-id"]
    assert (failure["event"], failure["status_code"]) == ("failure", 404)
    event = hook.events("/ok")[0]
    row = next(r for r in rows if r.request_id == event["request_id"])
    assert event["event"] == "success"
    assert Decimal(event["response_cost"]) == row.cost
    assert (event["prompt_tokens"], event["model_group"]) == (row.prompt_tokens, "gpt")
    for path, headers, body in hook.posts:
        secret = "own-secret" if path == "/failed" else "shared-secret"
        signed = headers["x-gateway-timestamp"].encode() + b"." + body
        expected = "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-gateway-signature"], expected)
    # Never a key in an event.
    assert b"sk-" not in b"".join(body for _p, _h, body in hook.posts)


def test_a_failing_receiver_gets_the_events_once_it_recovers(
    gateway_server, gateway_http, openai_upstream, receiver, monkeypatch
):
    hook, url = receiver
    monkeypatch.setattr(callbacks, "BACKOFF_S", (0.05, 0.05, 0.05))
    hook.fail_next = 2
    configure(success_callback=[url + "/ok"])
    openai_upstream("gpt", "gpt-4o-mini")
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    usage_rows(gateway_server, 1)
    wait_until(lambda: len(hook.events("/ok")) == 1)
    assert len(hook.posts) == 1  # delivered once, after two refusals


def test_without_webhooks_nothing_is_queued(gateway_server, gateway_http, openai_upstream):
    configure(success_callback=["langfuse"])  # an integration the gateway does not have
    openai_upstream("gpt", "gpt-4o-mini")
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    usage_rows(gateway_server, 1)
    wait_until(lambda: callbacks.dispatcher.endpoints is not None)
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    usage_rows(gateway_server, 2)
    assert not callbacks.dispatcher.queue and not callbacks.dispatcher.pending


def test_the_queue_is_bounded_and_drops_the_oldest(settings):
    settings.GATEWAY_CALLBACK_QUEUE = 3
    dispatcher = callbacks.Dispatcher()
    dispatcher.endpoints = callbacks.parse({"success_callback": ["http://127.0.0.1:9/x"]})

    async def never(url: str, headers: Any, body: bytes) -> int:
        raise OSError("unreachable")

    dispatcher.transport = never
    for n in range(5):
        dispatcher.offer({"request_id": f"r{n}", "status_code": 200})
    assert [e["request_id"] for _ep, e in dispatcher.queue] == ["r2", "r3", "r4"]


def test_entries_are_read_like_litellm_settings(monkeypatch, settings):
    settings.GATEWAY_CALLBACK_SECRET = ""
    monkeypatch.setenv("GENERIC_LOGGER_ENDPOINT", "https://logs.example/in")
    monkeypatch.setenv("HOOK_SECRET", "from-env")
    found = callbacks.parse(
        {
            "success_callback": ["generic_api", "prometheus", "https://a.example/hook"],
            "failure_callback": {"url": "https://b.example", "secret": "os.environ/HOOK_SECRET"},
        }
    )
    assert [e.url for e in found.success] == ["https://logs.example/in", "https://a.example/hook"]
    assert [(e.url, e.secret) for e in found.failure] == [("https://b.example", "from-env")]


def test_delivery_gives_up_after_the_retries(monkeypatch):
    monkeypatch.setattr(callbacks, "BACKOFF_S", (0.0, 0.0))
    calls = []

    async def flaky(url: str, headers: Any, body: bytes) -> int:
        calls.append(url)
        return 500

    dispatcher = callbacks.Dispatcher()
    dispatcher.transport = flaky
    endpoint = callbacks.Endpoint(url="http://x.example")
    assert asyncio.run(dispatcher.deliver(endpoint, b"[]", 1)) is False
    assert len(calls) == 3
