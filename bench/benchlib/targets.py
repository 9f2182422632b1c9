"""The measured targets: the fake upstreams (Node.js), the gateway (uvicorn) on a fresh
database, and the LiteLLM proxy from its own virtualenv."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchlib import procs

BENCH = Path(__file__).resolve().parent.parent
ROOT = BENCH.parent
LITELLM_VENV = BENCH / ".venv-litellm"
LITELLM_MASTER_KEY = "sk-bench-litellm-master"
UPSTREAM_KEY = "sk-bench-upstream-0000000000"
DEFAULT_PG_URL = "postgres://postgres@127.0.0.1:5432/bench_gateway"


@dataclass
class Target:
    """Something wrk can load: where, with which key, which process to measure."""

    name: str
    server: procs.Server
    key: str | None = None
    model: str = "bench-gpt"

    @property
    def url(self) -> str:
        return self.server.url


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_upstream(
    name: str, *, cpus: str | None, log_dir: Path, latency_ms: int = 0, chunk_delay_ms: int = 0
) -> procs.Server:
    node = shutil.which("node") or "/usr/bin/node"
    port = free_port()
    argv = [node, str(BENCH / "fake_upstream.js"), "--port", str(port)]
    argv += ["--latency-ms", str(latency_ms), "--chunk-delay-ms", str(chunk_delay_ms)]
    server = procs.start(
        name,
        f"http://127.0.0.1:{port}",
        argv,
        cpus=cpus,
        env=dict(os.environ),
        cwd=BENCH,
        log_path=log_dir / f"{name}.log",
    )
    procs.wait_http(server, "/health", timeout=15)
    return server


@dataclass
class Database:
    url: str
    data_dir: Path


def fresh_database(kind: str, pg_url: str, work_dir: Path) -> Database:
    """A new empty database: PostgreSQL (dropped and created again) or a SQLite file."""
    data_dir = Path(tempfile.mkdtemp(prefix="gateway-data-", dir=work_dir))
    if kind == "sqlite":
        return Database(url=f"sqlite:///{data_dir / 'bench.sqlite3'}", data_dir=data_dir)
    parts = urlsplit(pg_url)
    name = parts.path.lstrip("/")
    conn = ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    conn += ["-U", parts.username or "postgres"]
    env = dict(os.environ)
    if parts.password:
        env["PGPASSWORD"] = parts.password
    for tool in ("dropdb", "createdb"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} (PostgreSQL client) is needed, or use --db sqlite")
    subprocess.run(["dropdb", "--if-exists", *conn, name], env=env, check=True)
    subprocess.run(["createdb", *conn, name], env=env, check=True)
    return Database(url=pg_url, data_dir=data_dir)


def gateway_env(db: Database) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DJANGO_SETTINGS_MODULE="proxy_project.settings",
        DATABASE_URL=db.url,
        GATEWAY_DATA_DIR=str(db.data_dir),
        LOG_LEVEL="WARNING",
        DEBUG="false",
    )
    return env


def gateway_setup(
    python: str, db: Database, upstreams: dict[str, str], *, limits: bool = False
) -> str:
    """Migrate, route the bench model groups, issue a virtual key; returns the raw key.

    ``upstreams`` maps ``upstream``, ``slow`` and ``drip`` to the fake upstreams' URLs.
    """
    done = subprocess.run(
        [
            python,
            str(BENCH / "gateway_db.py"),
            "setup",
            "--upstream",
            upstreams["upstream"],
            "--slow-upstream",
            upstreams["slow"],
            "--drip-upstream",
            upstreams["drip"],
            *(["--limits"] if limits else []),
        ],
        env=gateway_env(db),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"gateway setup failed:\n{done.stdout}\n{done.stderr}")
    return str(json.loads(done.stdout.strip().splitlines()[-1])["key"])


def usage_counts(python: str, db: Database, command: str = "count") -> dict[str, int]:
    """The usage rows' counts; ``command="truncate"`` also empties the table."""
    done = subprocess.run(
        [python, str(BENCH / "gateway_db.py"), command],
        env=gateway_env(db),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return {k: int(v) for k, v in json.loads(done.stdout.strip().splitlines()[-1]).items()}


def start_gateway(
    name: str,
    *,
    python: str,
    db: Database,
    workers: int,
    cpus: str | None,
    log_dir: Path,
    serve: bool = False,
) -> procs.Server:
    """The gateway under uvicorn's command line, or with ``serve=True`` under the project's
    ``manage.py serve`` (whose ``--workers`` runs its own SO_REUSEPORT supervisor)."""
    port = free_port()
    if serve:
        argv = [python, str(ROOT / "manage.py"), "serve", "--no-migrate", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    else:
        uvicorn = str(Path(python).parent / "uvicorn")
        argv = [uvicorn, "proxy_project.asgi:application", "--host", "127.0.0.1"]
        argv += ["--port", str(port), "--loop", "uvloop", "--http", "httptools"]
        argv += ["--workers", str(workers), "--log-level", "warning", "--no-access-log"]
    server = procs.start(
        name,
        f"http://127.0.0.1:{port}",
        argv,
        cpus=cpus,
        env=gateway_env(db),
        cwd=ROOT,
        log_path=log_dir / f"{name}.log",
    )
    procs.wait_http(server, "/health/liveliness", timeout=60)
    return server


def litellm_installed() -> bool:
    return (LITELLM_VENV / "bin" / "litellm").exists()


def litellm_version() -> str:
    done = subprocess.run(
        [
            str(LITELLM_VENV / "bin" / "python"),
            "-c",
            "import importlib.metadata as m;print(m.version('litellm'))",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def write_litellm_config(path: Path, upstreams: dict[str, str]) -> None:
    """The same model groups as the gateway's, no database, master-key auth."""
    lines = ["model_list:"]
    groups = {"bench-gpt": "upstream", "bench-slow": "slow", "bench-drip": "drip"}
    for name, which in groups.items():
        base = upstreams[which]
        lines += [
            f"  - model_name: {name}",
            "    litellm_params:",
            "      model: openai/gpt-4o-mini",
            f"      api_base: {base}/v1",
            f"      api_key: {UPSTREAM_KEY}",
        ]
    lines += [
        "general_settings:",
        f"  master_key: {LITELLM_MASTER_KEY}",
        "litellm_settings:",
        "  set_verbose: false",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def start_litellm(*, config: Path, cpus: str | None, log_dir: Path) -> procs.Server:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    # No internet here: use the bundled cost map instead of fetching it at start-up.
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR")
    argv = [str(LITELLM_VENV / "bin" / "litellm"), "--config", str(config)]
    argv += ["--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"]
    server = procs.start(
        "litellm",
        f"http://127.0.0.1:{port}",
        argv,
        cpus=cpus,
        env=env,
        cwd=config.parent,
        log_path=log_dir / "litellm.log",
    )
    procs.wait_http(server, "/health/liveliness", timeout=180)
    return server
