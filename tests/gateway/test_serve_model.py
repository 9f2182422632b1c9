"""``manage.py serve --model provider/name --alias NAME``: one model, no config file, as a real
process on SQLite (the embedded defaults), against the fake OpenAI upstream."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import openai

from tests.conftest import UPSTREAM_KEY
from tests.fakes.server import free_port
from tests.gateway.test_quickstart import ROOT, _env, _stop


def _serve(
    data_dir: Path, *args: str, last: str = "Database:", **env: str
) -> tuple[subprocess.Popen[bytes], str, list[str]]:
    """Start the server and read its output up to the line holding ``last``."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), *args],
        cwd=ROOT,
        env={**_env(data_dir), **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the banner comes before the server listens
        line = proc.stdout.readline().decode()
        if not line:
            break
        lines.append(line.rstrip())
        if last in line:
            break
    url = f"http://127.0.0.1:{port}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError("\n".join(lines))
        try:
            with urllib.request.urlopen(url + "/health/liveliness", timeout=1):
                return proc, url, lines
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("the gateway did not start within a minute")


def test_serve_one_model_with_an_alias(tmp_path: Path, fake_openai: Any) -> None:
    proc, url, lines = _serve(
        tmp_path,
        "--model",
        "openai/gpt-4o-mini",
        "--alias",
        "my-model",
        "--api-base",
        fake_openai.url + "/v1",
        last="Master key:",
        OPENAI_API_KEY=UPSTREAM_KEY,
    )
    try:
        assert any("Serving model 'my-model' -> openai/gpt-4o-mini" in line for line in lines)
        master = next(line.split()[2] for line in lines if "Master key:" in line)
        client = openai.OpenAI(base_url=url + "/v1", api_key=master, max_retries=0)
        reply = client.chat.completions.create(
            model="my-model", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
        recorded = fake_openai.requests[-1]
        assert recorded.body["model"] == "gpt-4o-mini"
        assert {k.lower(): v for k, v in recorded.headers.items()}["authorization"] == (
            f"Bearer {UPSTREAM_KEY}"
        )
        with_wrong_key = openai.OpenAI(base_url=url + "/v1", api_key="sk-wrong", max_retries=0)
        try:
            with_wrong_key.models.list()
            raise AssertionError("a wrong key was accepted")
        except openai.AuthenticationError:
            pass
    finally:
        out = _stop(proc)
    assert UPSTREAM_KEY not in out


def test_configured_master_key_is_not_replaced(tmp_path: Path, fake_openai: Any) -> None:
    proc, url, lines = _serve(
        tmp_path,
        "--model",
        "openai/gpt-4o-mini",
        "--api-base",
        fake_openai.url + "/v1",
        PROXY_MASTER_KEY="sk-operator-chosen",
        OPENAI_API_KEY=UPSTREAM_KEY,
    )
    try:
        assert not any("Master key" in line for line in lines)
        client = openai.OpenAI(base_url=url + "/v1", api_key="sk-operator-chosen", max_retries=0)
        reply = client.chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.choices[0].message.content
    finally:
        _stop(proc)


def test_unknown_provider_is_an_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "manage.py", "serve", "--model", "nosuch/model", "--port", "1"],
        cwd=ROOT,
        env=_env(tmp_path),
        capture_output=True,
        timeout=120,
    )
    assert done.returncode != 0
    assert b"unknown provider 'nosuch'" in done.stderr
