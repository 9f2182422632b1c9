"""The end of a relayed stream: once the upstream's ``[DONE]`` arrives, the rest of the answer
and the gateway's own end go out as one final ASGI message (one write to the client), the call
is logged as a success, and the upstream connection goes back to the pool.

The app is driven in-process on the gateway's loop, so the ASGI messages can be counted; the
fake upstream answers each stream in one write (headers and every event), as a fast upstream
often does.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.conftest import UPSTREAM_KEY
from tests.fakes.server import serve
from tests.gateway.helpers import CHAT, E2E, HELLO, sse_data, sse_json, usage_rows

pytestmark = E2E

BASE = {"id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1, "model": "m"}


def _event(data: dict[str, Any] | str) -> bytes:
    payload = data.encode() if isinstance(data, str) else orjson.dumps(data)
    return b"data: " + payload + b"\n\n"


def _answer(include_usage: bool) -> bytes:
    usage = {"usage": None} if include_usage else {}
    words = [
        _event({**BASE, **usage, "choices": [{"index": 0, "delta": {"content": w}}]})
        for w in ("one", " two", " three")
    ]
    stop = _event(
        {**BASE, **usage, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    )
    tail = b""
    if include_usage:
        tokens = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}
        tail = _event({**BASE, "choices": [], "usage": tokens})
    return b"".join(words) + stop + tail + _event("[DONE]")


class OneWriteUpstream:
    """Answers every stream with its whole body in one response; records the connections."""

    def __init__(self) -> None:
        self.peers: list[Any] = []
        # When set: chunked framing, and the terminating chunk this long after [DONE].
        self.lag_after_done_s = 0.0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        assert request.transport is not None
        self.peers.append(request.transport.get_extra_info("peername"))
        include = bool((body.get("stream_options") or {}).get("include_usage"))
        headers = {"content-type": "text/event-stream; charset=utf-8"}
        if not self.lag_after_done_s:
            return web.Response(body=_answer(include), headers=headers)
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(_answer(include))
        await asyncio.sleep(self.lag_after_done_s)
        await response.write_eof()
        return response


@pytest.fixture
def one_write_upstream(make_deployment: Any) -> Iterator[OneWriteUpstream]:
    fake = OneWriteUpstream()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", fake.handle)
    with serve(app) as server:
        make_deployment(
            "gpt", "openai", "gpt-4o-mini", api_base=server.url + "/v1", api_key=UPSTREAM_KEY
        )
        yield fake


async def _drive(app: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    """One request through the ASGI app, with a client that, like uvicorn's, is told
    ``http.disconnect`` once the response is complete. Each message gets the loop time it
    was sent at, as ``at``."""
    messages: list[dict[str, Any]] = []
    complete = asyncio.Event()
    pending = [{"type": "http.request", "body": orjson.dumps(body), "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await complete.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        messages.append({**message, "at": asyncio.get_running_loop().time()})
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            complete.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": CHAT,
        "raw_path": CHAT.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"authorization", b"Bearer sk-test-master-key"),
            (b"content-type", b"application/json"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 4000),
    }
    await app(scope, receive, send)
    return messages


def _run(gateway_server: Any, body: dict[str, Any]) -> list[dict[str, Any]]:
    from proxy_project.asgi import application

    return gateway_server.call(_drive(application, body))


@pytest.mark.parametrize("include_usage", [True, False])
def test_the_end_of_the_stream_is_one_message(gateway_server, one_write_upstream, include_usage):
    body = {"model": "gpt", "messages": HELLO, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    messages = _run(gateway_server, body)

    assert [m["type"] for m in messages] == ["http.response.start", "http.response.body"]
    assert messages[0]["status"] == 200
    final = messages[1]
    assert final.get("more_body", False) is False
    assert sse_data(final["body"])[-1] == b"[DONE]"
    chunks = sse_json(final["body"])
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert text == "one two three"
    assert (chunks[-1]["choices"] == []) is include_usage

    (row,) = usage_rows(gateway_server, 1)
    assert row.status_code == 200  # the disconnect after the end is not a client abort
    assert row.error_type == ""
    # The gateway asks the upstream for usage either way, for the row.
    assert row.completion_tokens == 3


def test_the_upstream_connection_is_reused_after_a_complete_stream(
    gateway_server, one_write_upstream
):
    body = {"model": "gpt", "messages": HELLO, "stream": True}
    for _ in range(3):
        messages = _run(gateway_server, body)
        assert sse_data(messages[-1]["body"])[-1] == b"[DONE]"
    assert len(one_write_upstream.peers) == 3
    assert len(set(one_write_upstream.peers)) == 1
    usage_rows(gateway_server, 3)


def test_the_client_has_the_end_before_the_upstream_closes_its_body(
    gateway_server, one_write_upstream
):
    """The upstream's terminator comes 0.3 s after [DONE]: the client's response is already
    complete, and the server's ``http.disconnect`` that follows does not turn the call into a
    client abort while the gateway reads the rest for connection reuse."""
    one_write_upstream.lag_after_done_s = 0.3

    async def timed() -> tuple[float, float, list[dict[str, Any]]]:
        from proxy_project.asgi import application

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        messages = await _drive(application, {"model": "gpt", "messages": HELLO, "stream": True})
        return t0, loop.time(), messages

    for _ in range(2):
        t0, t1, messages = gateway_server.call(timed())
        assert sse_data(messages[-1]["body"])[-1] == b"[DONE]"
        assert messages[-1]["at"] - t0 < 0.25  # the client had everything at once ...
        assert t1 - t0 >= 0.3  # ... while the call read the upstream's terminator
    rows = usage_rows(gateway_server, 2)
    assert [r.status_code for r in rows] == [200, 200]  # and was not cut short
    assert len(set(one_write_upstream.peers)) == 1
