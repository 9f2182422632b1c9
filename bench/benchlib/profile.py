"""Sampling profiles of the gateway under load with py-spy, and a text summary of the hot spots
(collapsed stacks: ``frame;frame;...;frame count`` per line, root first)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")
OWN = "/apps/"


def py_spy(python: str) -> str | None:
    candidate = Path(python).parent / "py-spy"
    if candidate.exists():
        return str(candidate)
    return shutil.which("py-spy")


def record(
    exe: str, pid: int, out: Path, *, seconds: int, fmt: str, rate: int = 200
) -> subprocess.Popen[bytes]:
    """Start py-spy on ``pid`` (and its subprocesses) for ``seconds``; returns the process."""
    return subprocess.Popen(
        [
            exe,
            "record",
            "--pid",
            str(pid),
            "--duration",
            str(seconds),
            "--rate",
            str(rate),
            "--subprocesses",
            "--nonblocking",
            "--format",
            fmt,
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _short(frame: str) -> str:
    """``func (file)`` without the line number: one entry per function."""
    match = FRAME.match(frame)
    if not match:
        return frame
    path = match["file"]
    # py-spy already shortens paths to their importable form; absolute ones are cut here.
    for marker in (OWN, "/site-packages/", "/lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == OWN:
                path = "apps/" + path
            break
    return f"{match['func']} ({path})"


def _is_own(frame: str) -> bool:
    match = FRAME.match(frame)
    return bool(match and (match["file"].startswith("apps/") or OWN in match["file"]))


def load(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        # Without --idle py-spy still reports the thread-pool threads' waits; keep them.
        stacks.append((stack.split(";"), int(count)))
    return stacks


def summarize(path: Path, top: int = 20) -> dict[str, object]:
    """Shares of samples: leaf functions (self time), functions of apps/ including what they
    call (inclusive, counted once per stack) and the innermost apps/ frame of each stack."""
    stacks = load(path)
    total = sum(count for _, count in stacks)
    leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    innermost: Counter[str] = Counter()
    in_own = 0
    for frames, count in stacks:
        # py-spy's first frame is the thread (e.g. "process 123:..."), when present.
        frames = [f for f in frames if "(" in f]
        if not frames:
            continue
        leaf[_short(frames[-1])] += count
        own = [f for f in frames if _is_own(f)]
        for name in {_short(f) for f in own}:
            inclusive[name] += count
        if own:
            in_own += count
            innermost[_short(own[-1])] += count

    def shares(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(name, round(100 * n / total, 1)) for name, n in counter.most_common(top)]

    return {
        "samples": total,
        "under_apps_pct": round(100 * in_own / total, 1) if total else 0.0,
        "self_top": shares(leaf),
        "apps_inclusive_top": shares(inclusive),
        "apps_innermost_top": shares(innermost),
    }


def format_summary(title: str, summary: dict[str, object]) -> str:
    lines = [
        f"== {title}: {summary['samples']} samples; "
        f"{summary['under_apps_pct']}% with a frame of apps/ on the stack"
    ]
    for key, label in (
        ("apps_inclusive_top", "apps/ functions, inclusive (they and what they call)"),
        ("apps_innermost_top", "innermost apps/ frame (own code + libraries it calls)"),
        ("self_top", "self time (leaf frames, any code)"),
    ):
        lines.append(f"-- {label}")
        for name, pct in summary[key]:  # type: ignore[attr-defined]
            lines.append(f"  {pct:5.1f}%  {name}")
    return "\n".join(lines)


def profile_under_load(
    bench: Any, target: Any, *, exe: str, seconds: int, out_dir: Path, stamp: str
) -> dict[str, object]:
    """Record ``target``'s server with py-spy while wrk loads it at 32 connections, once as
    collapsed stacks (summarized) and once as a flame graph, for non-stream and stream."""
    out: dict[str, object] = {}
    for scenario, stream in (("ns-c32", False), ("st-c32", True)):
        for fmt, suffix in (("raw", "txt"), ("flamegraph", "svg")):
            path = out_dir / f"profile-{stamp}-{scenario}.{suffix}"
            spy = record(exe, target.server.pid, path, seconds=seconds, fmt=fmt)
            time.sleep(0.5)  # let py-spy attach before the load starts
            result, _cpu, noise = bench.load(
                target, stream=stream, connections=32, duration_s=seconds, model=target.model
            )
            _, err = spy.communicate(timeout=seconds + 60)
            if spy.returncode:
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')}")
            print(
                f"  [profile {scenario} {fmt}] {result.rps:.0f}/s under py-spy, "
                f"other load {noise:.2f} cores -> {path}",
                flush=True,
            )
            if fmt == "raw":
                summary = summarize(path)
                out[scenario] = {**summary, "stacks": str(path)}
                print(format_summary(scenario, summary), flush=True)
            else:
                out[f"{scenario}_flamegraph"] = str(path)
    return out
