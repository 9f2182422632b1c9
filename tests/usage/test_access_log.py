"""The opt-in access log: one line per call, with its request id, never a key."""

from __future__ import annotations

import logging

from tests.conftest import MASTER_KEY
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


def test_the_access_log_is_off_by_default(gateway_server, gateway_http, openai_upstream, caplog):
    openai_upstream("gpt", "gpt-4o-mini")
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
        usage_rows(gateway_server, 1)
    assert not [r for r in caplog.records if r.name == "gateway.access"]


def test_each_call_leaves_one_access_line(
    gateway_server, gateway_http, openai_upstream, make_key, caplog, settings
):
    settings.GATEWAY_ACCESS_LOG = True
    openai_upstream("gpt", "gpt-4o-mini")
    key = make_key(key_alias="ci")
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        ok = gateway_http.post(
            CHAT,
            json={"model": "gpt", "messages": HELLO},
            headers={"authorization": f"Bearer {key}"},
        )
        missing = gateway_http.post(CHAT, json={"model": "nope", "messages": HELLO})
        usage_rows(gateway_server, 2)
    lines = [r for r in caplog.records if r.name == "gateway.access"]
    assert [r.request_id for r in lines] == [
        ok.headers["x-request-id"],
        missing.headers["x-request-id"],
    ]
    assert (lines[0].status_code, lines[0].key_alias, lines[0].model_group) == (200, "ci", "gpt")
    assert lines[1].status_code == 404
    text = "\n".join(r.getMessage() + str(r.__dict__) for r in lines)
    assert key not in text and MASTER_KEY not in text
