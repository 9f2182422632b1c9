"""The README's serve command, run as a real process on SQLite: a new user's first minute."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import openai
import pytest

from tests.fakes.server import free_port
from tests.leaks import check_output, secret

ROOT = Path(__file__).resolve().parents[2]
# proxy_project/config.example.yaml's general_settings.master_key.
MASTER_KEY = secret("sk-1234")


def _env(data_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "DATABASE_URL",
            "PROXY_MASTER_KEY",
            "DJANGO_SETTINGS_MODULE",
            "SECRET_KEY",
            "GATEWAY_KEY_PEPPER",
            "REDIS_URL",
        )
    }
    env["GATEWAY_DATA_DIR"] = str(data_dir)
    env["GATEWAY_CHANGE_POLL_S"] = "0.5"
    return env


def _start(data_dir: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "serve",
            "--config",
            "proxy_project/config.example.yaml",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            *extra,
        ],
        cwd=ROOT,
        env=_env(data_dir),
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


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    try:
        out, _ = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    output = out.decode()
    check_output(output)
    return output


def _usage_rows(data_dir: Path) -> list[tuple[int, str, int]]:
    with sqlite3.connect(data_dir / "gateway.sqlite3") as conn:
        return conn.execute(
            "SELECT status_code, model_group, completion_tokens FROM usage_usagelog"
        ).fetchall()


def test_quickstart_streams_from_the_mock_model_and_logs_usage(tmp_path: Path):
    started = time.monotonic()
    proc, url = _start(tmp_path)
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
        stream = client.chat.completions.create(
            model="mock-gpt",
            stream=True,
            messages=[{"role": "user", "content": "Hello from a new user"}],
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        assert text == "Hello from a new user"
        assert time.monotonic() - started < 60
        reply = client.chat.completions.create(
            model="mock-fast", messages=[{"role": "user", "content": "again"}]
        )
        assert reply.choices[0].message.content == "again"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url + "/v1", api_key="sk-wrong", max_retries=0).models.list()
        # A deployment added by another process (an admin) serves without a restart.
        subprocess.run(
            [
                sys.executable,
                "manage.py",
                "shell",
                "-c",
                "from apps.routing.models import ModelGroup, Deployment;"
                "g = ModelGroup.objects.create(name='added-later');"
                "Deployment.objects.create(group=g, provider='mock', model='late')",
            ],
            cwd=ROOT,
            env=_env(tmp_path),
            check=True,
            capture_output=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                later = client.chat.completions.create(
                    model="added-later", messages=[{"role": "user", "content": "hi"}]
                )
                break
            except openai.NotFoundError:
                assert time.monotonic() < deadline, "the new deployment was never served"
                time.sleep(0.2)
        assert later.model == "late"
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    rows = _usage_rows(tmp_path)
    assert (200, "mock-gpt", 6) in rows  # 21 characters at 4 per token
    assert (200, "mock-fast", 2) in rows
    assert all(r[0] in (200, 404) for r in rows)


def test_serve_with_two_workers(tmp_path: Path):
    proc, url = _start(tmp_path, "--workers", "2")
    try:
        client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
        for n in range(20):
            reply = client.chat.completions.create(
                model="mock-fast", messages=[{"role": "user", "content": f"n{n}"}]
            )
            assert reply.choices[0].message.content == f"n{n}"
        # Each worker listens on a socket of its own once it has started.
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while len(_listening_sockets(port)) < 2:
            assert time.monotonic() < deadline, _listening_sockets(port)
            time.sleep(0.1)
        served_by = _workers_of_connections_opened_at_once(url, 16)
        # A worker that dies is replaced, and the new one takes its share of connections.
        first = _worker_pids(proc.pid)
        assert len(first) == 2, first
        os.kill(first[0], signal.SIGKILL)
        deadline = time.monotonic() + 30
        while True:
            try:
                now = set(_workers_of_connections_opened_at_once(url, 16))
            except ConnectionError:
                # Connections queued on the dying worker's socket are reset with it.
                now = set()
            if len(now) == 2 and now - set(served_by):
                break
            assert time.monotonic() < deadline, f"worker not replaced: {now}"
            time.sleep(0.2)
        assert len(_worker_pids(proc.pid)) == 2
    finally:
        output = _stop(proc)
    assert proc.returncode == 0, output
    assert output.count("Started server process") == 3, output  # two, then the replacement
    # 16 connections opened in a burst reach both workers (uvicorn's shared socket would
    # let the first worker to wake accept most of them); each connection's requests stay on
    # its worker.
    assert len(set(served_by)) == 2, served_by
    # Every request that was answered left its row (the killed worker's queued rows may be
    # lost with it: SIGKILL leaves no time to write or spool them).
    assert len([r for r in _usage_rows(tmp_path) if r[1] == "mock-fast"]) >= 20


def _listening_sockets(port: int) -> list[str]:
    """Inodes of the TCP sockets listening on ``port`` (state 0A in /proc/net/tcp)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                found.append(fields[9])
    return found


def _worker_pids(parent: int) -> list[int]:
    """Live worker processes of ``serve`` (spawned children of the supervisor)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return sorted(pids)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie lingers when nobody reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def _workers_of_connections_opened_at_once(url: str, n: int) -> list[str]:
    """Which worker served each of ``n`` connections opened together: request ids start with
    a random per-process prefix (``req-`` + 16 hex digits)."""
    import http.client
    import json
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    connections = [http.client.HTTPConnection(parts.hostname, parts.port) for _ in range(n)]
    for conn in connections:
        conn.connect()
    body = json.dumps({"model": "mock-fast", "messages": [{"role": "user", "content": "hi"}]})
    headers = {"Authorization": f"Bearer {MASTER_KEY}", "Content-Type": "application/json"}
    prefixes = []
    for conn in connections:
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == 200
        prefixes.append(response.getheader("x-request-id", "")[:20])
        conn.close()
    return prefixes


def test_ctrl_c_lets_an_in_flight_stream_finish(tmp_path: Path):
    proc, url = _start(tmp_path)
    words = " ".join(f"w{n}" for n in range(60))  # 60 chunks, 20 ms apart: over a second
    client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
    try:
        stream = client.chat.completions.create(
            model="mock-gpt", stream=True, messages=[{"role": "user", "content": words}]
        )
        pieces = []
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                pieces.append(chunk.choices[0].delta.content)
                if len(pieces) == 3:
                    proc.send_signal(signal.SIGINT)  # shut down mid-stream
        assert "".join(pieces) == words
        client.close()
        output = proc.communicate(timeout=30)[0].decode()  # exits on its own, no second signal
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    # The mock counts one token per four characters.
    assert (200, "mock-gpt", math.ceil(len(words) / 4)) in _usage_rows(tmp_path), output


def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path):
    """SIGKILL leaves the supervisor no time to pass anything on: each worker stops by
    itself (gracefully, writing its usage rows) instead of serving on as an orphan."""
    proc, url = _start(tmp_path, "--workers", "2")
    try:
        port = int(url.rsplit(":", 1)[1])
        deadline = time.monotonic() + 30
        while len(_listening_sockets(port)) < 2 or len(_worker_pids(proc.pid)) < 2:
            assert time.monotonic() < deadline, _listening_sockets(port)
            time.sleep(0.1)
        workers = _worker_pids(proc.pid)
        client = openai.OpenAI(base_url=url + "/v1", api_key=MASTER_KEY, max_retries=0)
        for n in range(5):
            client.chat.completions.create(
                model="mock-fast", messages=[{"role": "user", "content": f"n{n}"}]
            )
        client.close()
        proc.kill()
        proc.wait(timeout=10)
        deadline = time.monotonic() + 30
        while any(_running(pid) for pid in workers):
            assert time.monotonic() < deadline, f"orphaned workers still running: {workers}"
            time.sleep(0.1)
        assert _listening_sockets(port) == []
    finally:
        if proc.poll() is None:
            proc.kill()
    assert len([r for r in _usage_rows(tmp_path) if r[1] == "mock-fast"]) == 5
