"""Two gateway instances (``manage.py serve`` processes) on one database and one Redis share
their rate limits exactly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from apps.core.conf import conf
from tests.fakes.server import free_port
from tests.gateway.helpers import CHAT, E2E, HELLO

pytestmark = E2E

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = "redis://127.0.0.1:6379/0"


def _env(data_dir: Path) -> dict[str, str]:
    from django.db import connection

    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "DJANGO_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="proxy_project.settings",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        SECRET_KEY="test-secret-key-not-for-production",
        GATEWAY_KEY_PEPPER="test-pepper",
        PROXY_MASTER_KEY="sk-test-master-key",
        REDIS_URL=REDIS_URL,
        GATEWAY_REDIS_PREFIX=conf.GATEWAY_REDIS_PREFIX + f"instances:{time.monotonic_ns()}:",
        GATEWAY_DATA_DIR=str(data_dir),
        GATEWAY_CHANGE_POLL_S="0.5",
    )
    return env


def _start(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--no-migrate",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "exited")
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the gateway did not start within a minute")


@pytest.fixture
def two_instances(transactional_db, tmp_path: Path) -> Iterator[list[str]]:
    env = _env(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        urls = []
        for _ in range(2):
            proc, url = _start(env)
            procs.append(proc)
            urls.append(url)
        yield urls
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_rpm_60_lets_exactly_60_through_across_two_instances(
    openai_upstream, make_key, two_instances
):
    openai_upstream("gpt")
    key = make_key(rpm_limit=60)
    headers = {"authorization": f"Bearer {key}"}
    body = {"model": "gpt", "messages": HELLO}
    clients = [httpx2.Client(base_url=url, headers=headers, timeout=30) for url in two_instances]
    try:
        statuses = [clients[n % 2].post(CHAT, json=body).status_code for n in range(60)]
        assert statuses == [200] * 60
        for client in clients:  # the 61st, from either instance
            refused = client.post(CHAT, json=body)
            assert refused.status_code == 429
            assert refused.headers["x-ratelimit-remaining-requests"] == "0"
            assert int(refused.headers["retry-after"]) >= 1
            assert refused.json()["error"]["type"] == "rate_limit_error"
    finally:
        for client in clients:
            client.close()
