"""Two ``manage.py serve`` processes on one Redis share a deployment's rpm limit and its
cooldowns (the routing state of ``apps.routing.shared``)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx2
import pytest
import yaml

from tests.fakes.server import free_port

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MASTER = "sk-two-instances"
HELLO = [{"role": "user", "content": "hello"}]

CONFIG = {
    "model_list": [
        {"model_name": "limited", "litellm_params": {"model": "mock/echo", "rpm": 6}},
        {
            "model_name": "flaky",
            "litellm_params": {"model": "mock/bad", "mock_error_status": 500, "order": 1},
            "model_info": {"id": "flaky-bad"},
        },
        {
            "model_name": "flaky",
            "litellm_params": {"model": "mock/good", "order": 2},
            "model_info": {"id": "flaky-good"},
        },
    ],
    "router_settings": {"allowed_fails": 1, "cooldown_time": 30, "num_retries": 1},
    "general_settings": {"master_key": MASTER},
}


def _redis_up() -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping())
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="needs Redis")


def _env(data_dir: Path, prefix: str) -> dict[str, str]:
    drop = {"DATABASE_URL", "PROXY_MASTER_KEY", "DJANGO_SETTINGS_MODULE", "REDIS_URL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env.update(
        GATEWAY_DATA_DIR=str(data_dir),
        REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=prefix,
        SECRET_KEY="two-instances-secret",
        GATEWAY_KEY_PEPPER="two-instances-pepper",
    )
    return env


def _start(data_dir: Path, prefix: str, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), *extra],
        cwd=ROOT,
        env=_env(data_dir, prefix),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "exited")
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=1):
                return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the gateway did not start within a minute")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


@pytest.fixture(scope="module")
def two_gateways(tmp_path_factory: pytest.TempPathFactory) -> Any:
    data_dir = tmp_path_factory.mktemp("two-gateways")
    config = data_dir / "config.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    prefix = f"gwtest-two:{secrets.token_hex(4)}:"
    first, first_url = _start(data_dir, prefix, "--config", str(config))
    try:
        second, second_url = _start(data_dir, prefix, "--no-migrate")
    except BaseException:
        _stop(first)
        raise
    headers = {"authorization": f"Bearer {MASTER}"}
    clients = [
        httpx2.Client(base_url=first_url, headers=headers, timeout=30),
        httpx2.Client(base_url=second_url, headers=headers, timeout=30),
    ]
    yield clients
    for client in clients:
        client.close()
    _stop(second)
    _stop(first)


def _chat(client: httpx2.Client, model: str) -> httpx2.Response:
    return client.post("/v1/chat/completions", json={"model": model, "messages": HELLO})


def test_two_instances_enforce_one_rpm_limit(two_gateways: list[httpx2.Client]) -> None:
    if time.time() % 60 > 45:  # the counters are per minute: start in a fresh one
        time.sleep(61 - time.time() % 60)
    statuses = [_chat(two_gateways[n % 2], "limited").status_code for n in range(12)]
    assert statuses.count(200) == 6, statuses
    assert statuses.count(429) == 6, statuses
    assert statuses[:6] == [200] * 6


def _cooling(client: httpx2.Client, model_id: str) -> bool:
    info = client.get("/v1/model/info", params={"litellm_model_id": model_id}).json()
    return bool(info["data"][0]["model_info"]["in_cooldown"])


def test_failures_on_two_instances_cool_a_deployment_down_for_both(
    two_gateways: list[httpx2.Client],
) -> None:
    first, second = two_gateways
    for client in (first, second):  # one failure each: two in all, more than allowed_fails
        response = _chat(client, "flaky")
        assert response.status_code == 200
        assert response.headers["x-litellm-model-id"] == "flaky-good"
        assert response.headers["x-litellm-attempted-retries"] == "1"
    deadline = time.monotonic() + 5
    while not (_cooling(first, "flaky-bad") and _cooling(second, "flaky-bad")):
        assert time.monotonic() < deadline, "the cooldown did not reach both instances"
        time.sleep(0.1)
    for client in (first, second):
        response = _chat(client, "flaky")
        assert response.headers["x-litellm-attempted-retries"] == "0"
        assert response.headers["x-litellm-model-id"] == "flaky-good"
