"""Every request leaves exactly one usage row, whatever happened, with the right tokens and
cost; and no request can stop the usage writer from writing the others."""

from __future__ import annotations

import openai
import pytest

from apps.usage.models import UsageLog
from apps.usage.writer import writer
from tests.gateway.helpers import CHAT, E2E, HELLO, gpt_4o_mini_cost, usage_rows, wait_until

pytestmark = E2E


def test_one_row_per_request_for_every_outcome(
    gateway_server, gateway_http, openai_upstream, openai_client, make_key, fake_openai
):
    openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("broken", "error-500")
    openai_upstream("slow", "drip-200")
    client = openai_client()
    client.chat.completions.create(model="gpt", messages=HELLO)  # success
    list(client.chat.completions.create(model="gpt", messages=HELLO, stream=True))  # stream
    with pytest.raises(openai.InternalServerError):  # upstream error
        client.chat.completions.create(model="broken", messages=HELLO)
    with pytest.raises(openai.BadRequestError):  # client error after auth
        client.chat.completions.create(model="gpt", messages=[])
    with pytest.raises(openai.NotFoundError):  # unknown model
        client.chat.completions.create(model="nope", messages=HELLO)
    with pytest.raises(openai.PermissionDeniedError):  # model not allowed
        openai_client(make_key(models=["broken"])).chat.completions.create(
            model="gpt", messages=HELLO
        )
    body = {"model": "slow", "messages": HELLO, "stream": True}
    with gateway_http.stream("POST", CHAT, json=body) as response:  # client disconnect
        next(response.iter_lines())
    wait_until(lambda: fake_openai.fake.cancelled_streams == 1, what="cancelled stream")
    rows = usage_rows(gateway_server, 7)
    by_status = sorted((r.status_code, r.stream, r.call_type) for r in rows)
    assert by_status == [
        (200, False, "chat"),
        (200, True, "chat"),
        (400, False, "chat"),
        (403, False, "chat"),
        (404, False, "chat"),
        (499, True, "chat"),
        (502, False, "chat"),
    ]
    assert len({r.request_id for r in rows}) == 7
    ok = [r for r in rows if r.status_code == 200]
    assert all(r.cost == gpt_4o_mini_cost(6, 3) for r in ok)
    assert all(r.cost == 0 for r in rows if r.status_code != 200)


def test_concurrent_requests_each_leave_a_row(gateway_server, openai_upstream, openai_client):
    from concurrent.futures import ThreadPoolExecutor

    openai_upstream("gpt", "gpt-4o-mini")
    client = openai_client()

    def one(n: int) -> str:
        messages = [{"role": "user", "content": f"message number {n}"}]
        return client.chat.completions.create(model="gpt", messages=messages).id

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(one, range(40)))
    rows = usage_rows(gateway_server, 40)
    assert {r.status_code for r in rows} == {200}
    assert sum(r.prompt_tokens for r in rows) == 40 * 6


def test_spend_is_added_to_key_and_team(gateway_server, openai_upstream, openai_client, make_key):
    from apps.keys.models import VirtualKey
    from apps.teams.models import Team

    openai_upstream("gpt", "gpt-4o-mini")
    team = Team.objects.create(team_alias="t")
    client = openai_client(make_key(team=team))
    for _ in range(3):
        client.chat.completions.create(model="gpt", messages=HELLO)
    usage_rows(gateway_server, 3)
    expected = 3 * gpt_4o_mini_cost(6, 3)
    assert VirtualKey.objects.get().spend == expected
    assert Team.objects.get().spend == expected


def test_nul_characters_in_client_fields_do_not_block_usage_rows(
    gateway_server, gateway_http, openai_upstream
):
    """PostgreSQL text and jsonb cannot hold NUL: one such request used to make every batch
    it was part of fail, so no usage row was written any more."""
    openai_upstream("gpt", "gpt-4o-mini")
    bodies = [
        {"model": "gpt", "messages": HELLO, "user": "a\x00b"},
        {"model": "gpt", "messages": HELLO, "metadata": {"k\x00": ["v\x00", {"x": "\x00"}]}},
        {"model": "gpt", "messages": [{"role": "user\x00", "content": "x"}]},
        {"model": "gpt", "messages": HELLO},
    ]
    for body in bodies:
        assert gateway_http.post(CHAT, json=body).status_code in (200, 400, 404)
    rows = usage_rows(gateway_server, len(bodies))
    assert writer.pending == 0
    assert rows[0].end_user == "ab"
    assert rows[1].metadata == {"k": ["v", {"x": ""}]}
    assert rows[2].status_code == 400 and "\x00" not in rows[2].error_message
    assert UsageLog.objects.filter(status_code=200).count() == 3
