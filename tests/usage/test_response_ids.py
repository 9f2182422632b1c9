"""A usage row carries the answer's own id (``chatcmpl-…``), streams included; every answer,
errors included, says what it cost."""

from __future__ import annotations

from tests.gateway.helpers import CHAT, E2E, HELLO, sse_json, usage_rows

pytestmark = E2E


def test_the_row_holds_the_answers_own_id(gateway_server, gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    plain = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    streamed = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO, "stream": True})
    own_ids = {plain.json()["id"], sse_json(streamed.content)[0]["id"]}
    assert all(i.startswith("chatcmpl") for i in own_ids)
    rows = usage_rows(gateway_server, 2)
    assert {r.response_id for r in rows} == own_ids


def test_errors_say_they_cost_nothing(gateway_server, gateway_http, openai_upstream):
    openai_upstream("broken", "error-500")
    for body in (
        {"model": "broken", "messages": HELLO},  # upstream error
        {"model": "nope", "messages": HELLO},  # no such model
        {"model": "broken", "messages": []},  # invalid request
    ):
        response = gateway_http.post(CHAT, json=body)
        assert response.status_code >= 400
        assert response.headers["x-litellm-response-cost"] == "0"
    refused = gateway_http.post(
        CHAT, json={"model": "broken", "messages": HELLO}, headers={"authorization": "Bearer no"}
    )
    assert refused.status_code == 401
    assert refused.headers["x-litellm-response-cost"] == "0"
    usage_rows(gateway_server, 4)


def test_a_successful_answer_says_its_cost(gateway_server, gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    response = gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    [row] = usage_rows(gateway_server, 1)
    assert response.headers["x-litellm-response-cost"] == format(row.cost.normalize(), "f")
