"""Streamed chat completions: relay order, [DONE], usage chunk rules, breaks and disconnects.

Usage chunk rules: https://platform.openai.com/docs/api-reference/chat/create#chat-create-stream_options
(with ``include_usage`` an extra chunk before ``data: [DONE]`` carries the usage and an empty
``choices`` array; every other chunk has ``usage: null``).
"""

from __future__ import annotations

import logging
import time

import openai
import pytest

from tests.gateway.helpers import (
    CHAT,
    E2E,
    HELLO,
    gpt_4o_mini_cost,
    sse_data,
    sse_json,
    usage_rows,
    wait_until,
)

pytestmark = E2E

LONG = [{"role": "user", "content": "one two three four five six"}]


def _stream(client, body):
    with client.stream("POST", CHAT, json=body) as response:
        return response, response.read()


def test_sdk_stream_reassembles_the_text(gateway_server, openai_upstream, openai_client):
    openai_upstream("gpt", "gpt-4o-mini")
    stream = openai_client().chat.completions.create(model="gpt", messages=LONG, stream=True)
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "one two three four five six"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)


def test_chunks_are_relayed_in_order_and_end_with_done(gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    response, raw = _stream(gateway_http, {"model": "gpt", "messages": LONG, "stream": True})
    assert response.status_code == 200
    data = sse_data(raw)
    assert data[-1] == b"[DONE]"
    assert data.count(b"[DONE]") == 1
    chunks = sse_json(raw)
    assert [c["object"] for c in chunks] == ["chat.completion.chunk"] * len(chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content") for c in chunks[1:-1]]
    assert pieces == ["one", " two", " three", " four", " five", " six"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_stream_response_is_server_sent_events_with_gateway_headers(gateway_http, openai_upstream):
    deployment = openai_upstream("gpt", "gpt-4o-mini")
    response, _ = _stream(gateway_http, {"model": "gpt", "messages": HELLO, "stream": True})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["x-request-id"].startswith("req-")
    assert response.headers["x-litellm-model-group"] == "gpt"
    assert response.headers["x-litellm-model-id"] == deployment.model_id


def test_include_usage_true_ends_with_a_usage_chunk_with_empty_choices(
    gateway_server, openai_upstream, openai_client
):
    openai_upstream("gpt", "gpt-4o-mini")
    stream = openai_client().chat.completions.create(
        model="gpt", messages=LONG, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    final = chunks[-1]
    assert final.choices == []
    assert (final.usage.prompt_tokens, final.usage.completion_tokens) == (9, 6)
    assert final.usage.total_tokens == 15
    assert all(c.usage is None for c in chunks[:-1])
    [row] = usage_rows(gateway_server, 1)
    assert (row.prompt_tokens, row.completion_tokens, row.stream) == (9, 6, True)


def test_include_usage_raw_chunk_order(gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {
        "model": "gpt",
        "messages": LONG,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    _, raw = _stream(gateway_http, body)
    data = sse_data(raw)
    assert data[-1] == b"[DONE]"
    chunks = sse_json(raw)
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["total_tokens"] == 15
    assert [c for c in chunks if c.get("usage")] == [chunks[-1]]


@pytest.mark.parametrize("options", [None, {"include_usage": False}, {}])
def test_without_include_usage_the_client_sees_no_usage_but_the_row_has_it(
    gateway_server, gateway_http, openai_upstream, fake_openai, options
):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {"model": "gpt", "messages": LONG, "stream": True}
    if options is not None:
        body["stream_options"] = options
    _, raw = _stream(gateway_http, body)
    chunks = sse_json(raw)
    assert not [c for c in chunks if c.get("usage")]
    assert all(c["choices"] for c in chunks)
    # The gateway asked the upstream for usage on the client's behalf.
    [sent] = fake_openai.requests
    assert sent.body["stream_options"]["include_usage"] is True
    [row] = usage_rows(gateway_server, 1)
    assert (row.prompt_tokens, row.completion_tokens) == (9, 6)
    assert row.cost == gpt_4o_mini_cost(9, 6)
    assert row.stream is True and row.status_code == 200


def test_unknown_stream_parameters_are_forwarded(gateway_http, openai_upstream, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {
        "model": "gpt",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": False, "vendor_flag": 1},
        "top_k": 3,
    }
    _stream(gateway_http, body)
    [sent] = fake_openai.requests
    assert sent.body["top_k"] == 3
    assert sent.body["stream_options"] == {"include_usage": True, "vendor_flag": 1}


def test_first_chunk_is_relayed_before_the_upstream_finishes(gateway_http, openai_upstream):
    openai_upstream("gpt", "drip-150")
    body = {"model": "gpt", "messages": LONG, "stream": True}
    start = time.monotonic()
    arrivals = []
    with gateway_http.stream("POST", CHAT, json=body) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                arrivals.append(time.monotonic() - start)
    # 8 chunks 150 ms apart: the first must not wait for the last.
    assert arrivals[-1] > 0.9
    assert arrivals[0] < 0.5
    assert arrivals[2] < arrivals[-1] - 0.5


def test_upstream_error_event_becomes_an_error_event(
    gateway_server, gateway_http, openai_upstream, openai_client
):
    openai_upstream("gpt", "stream-error")
    _, raw = _stream(gateway_http, {"model": "gpt", "messages": LONG, "stream": True})
    data = sse_data(raw)
    assert b"[DONE]" not in data
    last = sse_json(raw)[-1]
    assert set(last) == {"error"}
    assert "error while streaming" in last["error"]["message"]
    with pytest.raises(openai.APIError, match="error while streaming"):
        list(openai_client().chat.completions.create(model="gpt", messages=LONG, stream=True))
    rows = usage_rows(gateway_server, 2)
    assert [r.status_code for r in rows] == [502, 502]
    assert all(r.stream and r.error_message for r in rows)


def test_upstream_connection_cut_mid_stream_is_an_error_not_a_clean_stop(
    gateway_server, gateway_http, openai_upstream, openai_client
):
    openai_upstream("gpt", "stream-break")
    _, raw = _stream(gateway_http, {"model": "gpt", "messages": LONG, "stream": True})
    data = sse_data(raw)
    assert b"[DONE]" not in data
    chunks = sse_json(raw)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chunks[-1]["error"]["code"] == "upstream_disconnected"
    with pytest.raises(openai.APIError):
        list(openai_client().chat.completions.create(model="gpt", messages=LONG, stream=True))
    rows = usage_rows(gateway_server, 2)
    assert [r.status_code for r in rows] == [502, 502]
    assert rows[0].error_type == "upstream_disconnected"


def test_upstream_error_before_the_first_byte_is_a_plain_error_response(
    gateway_server, openai_upstream, openai_client, gateway_http
):
    openai_upstream("gpt", "error-429")
    with pytest.raises(openai.RateLimitError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO, stream=True)
    assert info.value.response.headers["retry-after"] == "7"
    response, _ = _stream(gateway_http, {"model": "gpt", "messages": HELLO, "stream": True})
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/json"
    assert response.json()["error"]["type"] == "rate_limit_error"


def test_stream_read_timeout_mid_stream_ends_with_an_error_event(
    gateway_server, gateway_http, openai_upstream
):
    openai_upstream("gpt", "drip-2000", stream_timeout=0.3)
    _, raw = _stream(gateway_http, {"model": "gpt", "messages": LONG, "stream": True})
    chunks = sse_json(raw)
    assert chunks[-1]["error"]["code"] == "upstream_timeout"
    assert b"[DONE]" not in sse_data(raw)
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 504


def test_client_disconnect_cancels_the_upstream_stream(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    openai_upstream("gpt", "drip-200")
    body = {"model": "gpt", "messages": LONG, "stream": True}
    with gateway_http.stream("POST", CHAT, json=body) as response:
        lines = response.iter_lines()
        first = next(line for line in lines if line.startswith("data:"))
        assert "chat.completion.chunk" in first
    # Leaving the block closed the connection mid-stream.
    wait_until(lambda: fake_openai.fake.cancelled_streams == 1, what="upstream cancellation")
    assert fake_openai.fake.completed_streams == 0
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 499
    assert row.stream is True
    assert row.ttft_ms is not None


def test_sdk_stream_closed_early_cancels_the_upstream(
    gateway_server, openai_upstream, openai_client, fake_openai
):
    openai_upstream("gpt", "drip-200")
    stream = openai_client().chat.completions.create(model="gpt", messages=LONG, stream=True)
    next(iter(stream))
    stream.close()
    wait_until(lambda: fake_openai.fake.cancelled_streams == 1, what="upstream cancellation")
    [row] = usage_rows(gateway_server, 1)
    assert row.status_code == 499


def test_streamed_completion_of_every_chunk_is_counted_once(
    gateway_server, openai_upstream, openai_client, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    client = openai_client()
    for _ in range(3):
        list(client.chat.completions.create(model="gpt", messages=HELLO, stream=True))
    assert fake_openai.fake.completed_streams == 3
    rows = usage_rows(gateway_server, 3)
    assert {(r.status_code, r.prompt_tokens, r.completion_tokens) for r in rows} == {(200, 6, 3)}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_client_disconnect_is_not_logged_as_a_server_error(
    gateway_server, gateway_http, openai_upstream, fake_openai
):
    """A client leaving mid-stream is ordinary: the server used to log each one as an
    'Exception in ASGI application' with a traceback."""
    openai_upstream("gpt", "drip-200")
    handler = _Records()
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(handler)
    try:
        body = {"model": "gpt", "messages": LONG, "stream": True}
        with gateway_http.stream("POST", CHAT, json=body) as response:
            next(response.iter_lines())
        wait_until(lambda: fake_openai.fake.cancelled_streams == 1, what="upstream cancellation")
        [row] = usage_rows(gateway_server, 1)
    finally:
        server_log.removeHandler(handler)
    assert row.status_code == 499
    assert [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR] == []


def test_client_leaving_a_non_stream_request_leaves_a_499_row(
    gateway_server, gateway_http, openai_upstream
):
    import httpx2

    openai_upstream("gpt", "slow-1500")
    handler = _Records()
    server_log = logging.getLogger("uvicorn.error")
    server_log.addHandler(handler)
    try:
        with pytest.raises(httpx2.ReadTimeout):
            gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO}, timeout=0.3)
        [row] = usage_rows(gateway_server, 1)
    finally:
        server_log.removeHandler(handler)
    assert (row.status_code, row.stream) == (499, False)
    assert row.latency_ms < 1500
    assert [r.getMessage() for r in handler.records if r.levelno >= logging.ERROR] == []


def test_concurrent_streams_do_not_mix(gateway_server, openai_upstream, openai_client):
    from concurrent.futures import ThreadPoolExecutor

    openai_upstream("gpt", "drip-20")
    client = openai_client()

    def one(n: int) -> str:
        words = " ".join(f"w{n}-{i}" for i in range(6))
        stream = client.chat.completions.create(
            model="gpt", messages=[{"role": "user", "content": words}], stream=True
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == words
        return text

    with ThreadPoolExecutor(10) as pool:
        assert len(set(pool.map(one, range(20)))) == 20
    rows = usage_rows(gateway_server, 20)
    assert {(r.status_code, r.completion_tokens) for r in rows} == {(200, 6)}
