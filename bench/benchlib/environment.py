"""What the benchmark checks and records about the machine before it runs."""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchlib.load import INSTALL_HINT, wrk_path
from benchlib.targets import ROOT


def preflight(args: argparse.Namespace) -> None:
    missing = []
    if wrk_path() is None:
        missing.append(f"wrk: {INSTALL_HINT}")
    if shutil.which("node") is None and not Path("/usr/bin/node").exists():
        missing.append("node (Node.js), for the fake upstream")
    if not Path(args.python).exists():
        missing.append(f"the project's virtualenv python at {args.python}")
    if args.server_cpus and shutil.which("taskset") is None:
        missing.append("taskset (util-linux), or pass --no-pin")
    if missing:
        print("missing:\n  " + "\n  ".join(missing), file=sys.stderr)
        sys.exit(2)


def machine() -> dict[str, Any]:
    model = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break

    def version(argv: list[str]) -> str:
        # wrk -v prints its version and exits non-zero: take the first line whatever the status.
        done = subprocess.run(argv, capture_output=True, text=True, check=False)
        lines = (done.stdout or done.stderr).strip().splitlines()
        return lines[0] if lines else ""

    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no", "apps", "proxy_project"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return {
        # The code measured: the commit plus any uncommitted changes to the application.
        "commit": head.stdout.strip(),
        "uncommitted": [line[3:] for line in dirty.stdout.splitlines()],
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "kernel": platform.release(),
        "node": version(["node", "--version"]),
        "wrk": version(["wrk", "-v"]),
    }
