"""Request and response bodies are kept only when enabled, with secrets redacted."""

from __future__ import annotations

import orjson

from apps.usage.redaction import MASK, redact, stored_text
from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


def test_bodies_are_not_stored_by_default(gateway_server, gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    [row] = usage_rows(gateway_server, 1)
    assert (row.request_body, row.response_body) == ("", "")


def test_a_key_can_turn_storage_on_and_secrets_are_redacted(
    gateway_server, gateway_http, openai_upstream, make_key
):
    openai_upstream("gpt", "gpt-4o-mini")
    key = make_key(metadata={"store_prompts_in_spend_logs": True})
    body = {
        "model": "gpt",
        "messages": [{"role": "user", "content": "my key is sk-abcdefghijklmnop, keep it"}],
        "metadata": {"api_key": "hunter2", "trace": "t"},
    }
    answer = gateway_http.post(CHAT, json=body, headers={"authorization": f"Bearer {key}"})
    streamed = gateway_http.post(
        CHAT, json={**body, "stream": True}, headers={"authorization": f"Bearer {key}"}
    )
    assert streamed.status_code == 200
    plain, stream = usage_rows(gateway_server, 2)
    stored = orjson.loads(plain.request_body)
    assert stored["messages"][0]["content"] == f"my key is {MASK}, keep it"
    assert stored["metadata"] == {"api_key": MASK, "trace": "t"}
    assert orjson.loads(plain.response_body)["id"] == answer.json()["id"]
    assert "hunter2" not in plain.request_body and "sk-abcdefghijklmnop" not in plain.request_body
    assert stream.request_body and stream.response_body == ""  # a stream's answer is not kept


def test_store_everything_setting(gateway_server, gateway_http, openai_upstream, settings):
    settings.GATEWAY_STORE_PROMPTS = True
    settings.GATEWAY_STORED_BODY_BYTES = 40
    openai_upstream("gpt", "gpt-4o-mini")
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    [row] = usage_rows(gateway_server, 1)
    assert len(row.request_body) == 40 and len(row.response_body) == 40


def test_redaction_of_names_and_key_shaped_values():
    assert redact(
        {"Authorization": "Bearer x", "nested": [{"password": 1, "ok": "AKIAABCDEFGHIJKLMNOP"}]}
    ) == {
        "Authorization": MASK,
        "nested": [{"password": MASK, "ok": MASK}],
    }
    assert stored_text(b"not json sk-1234567890abc", 100) == f"not json {MASK}"
    assert stored_text({"a": "b\x00c"}, 100) == '{"a":"bc"}'
