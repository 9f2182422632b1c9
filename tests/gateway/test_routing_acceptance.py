"""The routing issue's acceptance run: three deployments in a group, one answering 500s and
one rate-limited; 1,000 requests see no error; the failing ones are cooled down after
allowed_fails and come back after cooldown_time; with every deployment failing the fallback
group answers."""

from __future__ import annotations

import itertools
import time
from concurrent.futures import ThreadPoolExecutor

from tests.gateway.helpers import CHAT, E2E, HELLO, usage_rows

pytestmark = E2E

COOLDOWN_S = 1.0


def _bursts(times: list[float]) -> list[list[float]]:
    """Requests grouped where they are less than the cooldown apart."""
    out: list[list[float]] = []
    for t in times:
        if out and t - out[-1][-1] < COOLDOWN_S * 0.9:
            out[-1].append(t)
        else:
            out.append([t])
    return out


def test_a_group_with_failing_deployments_behaves_like_one_reliable_model(
    gateway_server, gateway_http, openai_upstream, fake_openai, router_config
):
    router_config(allowed_fails=3, cooldown_time=COOLDOWN_S, fallbacks=[{"gpt": ["backup"]}])
    openai_upstream("gpt", "error-500")
    openai_upstream("gpt", "error-429")
    good = openai_upstream("gpt", "gpt-4o-mini")
    openai_upstream("backup", "gpt-4o")
    body = {"model": "gpt", "messages": HELLO}

    def one(_: int) -> tuple[int, str, str]:
        response = gateway_http.post(CHAT, json=body)
        return (
            response.status_code,
            response.headers.get("x-litellm-model-id", ""),
            response.headers.get("x-litellm-attempted-retries", ""),
        )

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(1000)))
    elapsed = time.monotonic() - started
    assert [r for r in results if r[0] != 200] == []
    assert {r[1] for r in results} == {good.model_id}
    by_model = {
        model: sorted(r.at for r in recorded)
        for model, recorded in itertools.groupby(
            sorted(fake_openai.requests, key=lambda r: r.body["model"]),
            key=lambda r: r.body["model"],
        )
    }
    assert len(by_model["gpt-4o-mini"]) == 1000
    for failing in ("error-500", "error-429"):
        bursts = _bursts(by_model[failing])
        # Each cooldown period lets a burst of at most allowed_fails + 1 failures through
        # (a few more when concurrent requests fail at once), then nothing for cooldown_time.
        assert all(len(b) <= 4 + 8 for b in bursts), [len(b) for b in bursts]
        assert len(bursts) <= elapsed / COOLDOWN_S + 2
        if elapsed > 2.5 * COOLDOWN_S:
            assert len(bursts) >= 2, "the deployment never came back after its cooldown"
    retried = sum(1 for r in results if r[2] != "0")
    assert retried < 200, retried
    usage_rows(gateway_server, 1000, timeout=30)

    # Every deployment of the group failing: the fallback group answers.
    fake_openai.fake.reset()
    fake_openai.fake.fail("gpt-4o-mini", *([503] * 50))
    response = gateway_http.post(CHAT, json=body)
    assert response.status_code == 200
    assert response.headers["x-litellm-model-group"] == "backup"
    assert response.headers["x-litellm-attempted-fallbacks"] == "1"
