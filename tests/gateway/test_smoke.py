from __future__ import annotations

from apps.usage.models import UsageLog
from tests.conftest import UPSTREAM_KEY


def test_chat_through_fake_openai(gateway_server, openai_upstream, openai_client, fake_openai):
    openai_upstream("gpt", "gpt-4o-mini")
    client = openai_client()
    reply = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hello world"}]
    )
    assert reply.choices[0].message.content == "hello world"
    assert fake_openai.requests[-1].body["model"] == "gpt-4o-mini"
    assert fake_openai.requests[-1].headers["Authorization"] == f"Bearer {UPSTREAM_KEY}"
    gateway_server.flush_usage()
    row = UsageLog.objects.get()
    assert row.status_code == 200
    assert row.prompt_tokens == reply.usage.prompt_tokens
