"""A call's tags come from its body's ``metadata.tags`` (``extra_body={"metadata": ...}``) and
from the ``x-litellm-tags`` header, and are kept on its usage row."""

from __future__ import annotations

from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E


def test_body_metadata_and_header_tags_are_stored(gateway_server, gateway_http, openai_upstream):
    openai_upstream("gpt", "gpt-4o-mini")
    body = {"model": "gpt", "messages": HELLO, "metadata": {"tags": ["a"], "trace": "t-1"}}
    gateway_http.post(CHAT, json=body, headers={"x-litellm-tags": "b, a ,c"})
    gateway_http.post(CHAT, json={"model": "gpt", "messages": HELLO})
    first, second = usage_rows(gateway_server, 2)
    assert first.metadata == {"tags": ["a", "b", "c"], "trace": "t-1"}
    assert second.metadata == {}
