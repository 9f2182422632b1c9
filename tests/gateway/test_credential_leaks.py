"""The upstream's credentials never reach a client, a usage row or a log, whatever the
failure: echoed keys and masked keys in upstream messages are scrubbed."""

from __future__ import annotations

import openai
import pytest

from tests.conftest import UPSTREAM_KEY
from tests.fakes.server import free_port
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


def test_upstream_key_echoed_in_an_error_is_scrubbed(openai_upstream, openai_client, caplog):
    openai_upstream("gpt", "echo-key-error")
    with pytest.raises(openai.AuthenticationError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert UPSTREAM_KEY not in info.value.message
    assert "Bad key: Bearer ****" in info.value.message
    assert UPSTREAM_KEY not in str(info.value.body)


def test_masked_upstream_key_in_an_error_is_scrubbed(
    gateway_server, openai_upstream, openai_client
):
    openai_upstream("gpt", "error-401")
    with pytest.raises(openai.AuthenticationError) as info:
        openai_client().chat.completions.create(model="gpt", messages=HELLO)
    assert "sk-upstr" not in info.value.message
    [row] = usage_rows(gateway_server, 1)
    assert "sk-upstr" not in row.error_message and UPSTREAM_KEY not in row.error_message


def test_upstream_credentials_never_reach_a_client_or_a_log(
    gateway_server, gateway_http, openai_upstream, make_deployment, caplog, leak_guard
):
    """Every failure kind, with every logger at DEBUG: the upstream key appears nowhere. (The
    leak guard checks each byte sent and each log line again when the test ends.)"""
    import logging

    caplog.set_level(logging.DEBUG)
    for model in ("echo-key-error", "error-401", "error-500", "html-error", "garbage"):
        openai_upstream(model, model)
    make_deployment(
        "refused",
        "openai",
        "x",
        api_base=f"http://127.0.0.1:{free_port()}/v1",
        api_key=UPSTREAM_KEY,
    )
    openai_upstream("slow", "slow-3000", timeout=0.2)
    openai_upstream("cut", "stream-break")
    for model in (
        "echo-key-error",
        "error-401",
        "error-500",
        "html-error",
        "garbage",
        "refused",
        "slow",
        "cut",
    ):
        for stream in (False, True):
            body = {"model": model, "messages": HELLO, "stream": stream}
            response = gateway_http.post(CHAT, json=body)
            assert UPSTREAM_KEY not in response.text
            assert "sk-upstr" not in response.text
    gateway_http.get("/health")
    gateway_http.get("/model/info")
    rows = usage_rows(gateway_server, 16 + 8)  # the calls, and one per /health probe
    assert all(UPSTREAM_KEY not in row.error_message for row in rows)
    assert UPSTREAM_KEY not in caplog.text
    assert all(UPSTREAM_KEY.encode() not in chunk for chunk in leak_guard)
