"""Load: wrk runs (fixed connections and duration, latency percentiles) and a time-to-first-byte
probe for streams."""

from __future__ import annotations

import json
import os
import shutil
import socket
import statistics
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchlib.procs import taskset_prefix

WRK_DIR = Path(__file__).resolve().parent.parent / "wrk"
SCRIPTS = {False: WRK_DIR / "chat.lua", True: WRK_DIR / "chat_stream.lua"}
INSTALL_HINT = "apt-get update && apt-get install -y wrk"


def wrk_path() -> str | None:
    return shutil.which("wrk")


@dataclass
class WrkResult:
    requests: int
    duration_s: float
    errors: dict[str, int]
    latency_us: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration_s, 3),
            "rps": round(self.rps, 1),
            "errors": self.errors,
            "latency_us": self.latency_us,
        }


def run_wrk(
    url: str,
    *,
    stream: bool,
    connections: int,
    duration_s: float,
    key: str | None,
    model: str,
    cpus: str | None,
    timeout_s: int = 30,
) -> WrkResult:
    """One wrk run with one thread; raises RuntimeError when wrk reports nothing."""
    wrk = wrk_path()
    if wrk is None:
        raise RuntimeError(f"wrk is not installed: {INSTALL_HINT}")
    env = dict(os.environ, BENCH_MODEL=model, BENCH_KEY=key or "")
    argv = [
        *taskset_prefix(cpus),
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={timeout_s}s",
        "-s",
        str(SCRIPTS[stream]),
        url,
    ]
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=duration_s + timeout_s + 30
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = json.loads(line[len("BENCH_JSON ") :])
            return WrkResult(
                requests=int(data["requests"]),
                duration_s=data["duration_us"] / 1e6,
                errors={k: int(v) for k, v in data["errors"].items()},
                latency_us={k: float(v) for k, v in data["latency_us"].items()},
            )
    raise RuntimeError(
        f"wrk gave no report (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )


def _stream_request(host: str, path: str, key: str | None, model: str) -> bytes:
    body = json.dumps(
        {
            "model": model,
            "messages": [{"role": "user", "content": "Describe a quick brown fox."}],
            "max_tokens": 64,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    ).encode()
    auth = f"Authorization: Bearer {key}\r\n" if key else ""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{auth}Connection: close\r\n\r\n"
    )
    return head.encode() + body


def ttfb_probe(url: str, *, key: str | None, model: str, samples: int) -> dict[str, float] | None:
    """Sequential streamed requests on fresh connections: median and p90 time to the first
    ``data:`` byte and to the end of the stream, in ms. None when a request failed."""
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = _stream_request(f"{host}:{port}", "/v1/chat/completions", key, model)
    firsts, totals = [], []
    for _ in range(samples):
        with socket.create_connection((host, port), timeout=30) as sock:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            t0 = time.perf_counter()
            sock.sendall(payload)
            seen = b""
            first = None
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                if first is None:
                    seen += data
                    if b"data:" in seen:
                        first = time.perf_counter() - t0
                        if not seen.startswith(b"HTTP/1.1 200"):
                            return None
            total = time.perf_counter() - t0
        if first is None:
            return None
        firsts.append(first * 1000)
        totals.append(total * 1000)

    def p90(values: list[float]) -> float:
        return sorted(values)[max(0, int(len(values) * 0.9) - 1)]

    return {
        "ttfb_p50_ms": round(statistics.median(firsts), 3),
        "ttfb_p90_ms": round(p90(firsts), 3),
        "total_p50_ms": round(statistics.median(totals), 3),
        "samples": samples,
    }
