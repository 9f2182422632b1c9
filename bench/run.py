#!/usr/bin/env python3
"""Benchmark the gateway against the fake upstream directly (the limit) and the LiteLLM proxy.

See bench/README.md. Stdlib only; the gateway runs from the project's virtualenv, LiteLLM from
bench/.venv-litellm when installed. Exits 1 when the gateway answered with errors or the usage
rows do not match the requests, 2 when a tool is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchlib import procs, profile, report, targets
from benchlib.environment import machine, preflight
from benchlib.runner import SCENARIOS, WORKER_SCENARIOS, Bench
from benchlib.targets import BENCH, ROOT, Target

RESULTS = BENCH / "results"


class ServerList(list[procs.Server]):
    """The servers started, whose pids also go to the benchmark's own-process list."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__()
        self.pids = pids

    def append(self, server: procs.Server) -> None:
        super().append(server)
        self.pids.append(server.pid)

    def extend(self, servers: Any) -> None:
        for server in servers:
            self.append(server)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--smoke", action="store_true", help="~2 s per run, 1 round, no LiteLLM")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run (10)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (3)")
    p.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument(
        "--database-url",
        default=os.environ.get("BENCH_DATABASE_URL", targets.DEFAULT_PG_URL),
        help="PostgreSQL database to drop and create afresh",
    )
    p.add_argument("--python", default=str(ROOT / ".venv" / "bin" / "python"))
    p.add_argument("--no-litellm", action="store_true", help="skip LiteLLM even when installed")
    p.add_argument("--latency-ms", type=int, default=50, help="latency of the slow upstream")
    p.add_argument("--slow-connections", type=int, default=256)
    p.add_argument("--skip", default="", help="comma list of: slow,ttfb,workers")
    p.add_argument("--soak", type=float, metavar="MINUTES", help="then load the gateway this long")
    p.add_argument(
        "--profile",
        type=int,
        metavar="SECONDS",
        help="only profile the gateway with py-spy under load (non-stream, stream)",
    )
    p.add_argument(
        "--max-noise",
        type=float,
        default=0.15,
        help="repeat a run when other processes kept more than this many cores busy (0.15)",
    )
    p.add_argument(
        "--limits",
        action="store_true",
        help="the bench key and its team get a budget and rpm/tpm/parallel limits "
        "(set REDIS_URL to count them in Redis)",
    )
    p.add_argument("--retries", type=int, default=2, help="repeats of a noisy run (2)")
    p.add_argument("--no-pin", action="store_true", help="do not pin processes to CPUs")
    p.add_argument("--server-cpus", default="0", help="CPUs of the gateway and LiteLLM (0)")
    p.add_argument("--client-cpus", default="1", help="CPUs of wrk and the fake upstreams (1)")
    p.add_argument(
        "--db-cpus",
        help="CPUs of the benchmark database's backends (default: the client CPUs; "
        "'any' leaves them to the scheduler)",
    )
    p.add_argument(
        "--worker-core-share",
        type=float,
        default=0.4,
        help="share of a core each worker gets in the capped --workers comparison (0.4)",
    )
    args = p.parse_args(argv)
    if args.smoke:
        args.duration, args.rounds, args.no_litellm, args.retries = 2.0, 1, True, 0
    if args.no_pin or (os.cpu_count() or 1) < 2:
        args.server_cpus = args.client_cpus = None
    return args


def usage_check(args: argparse.Namespace, db: targets.Database, bench: Bench) -> dict[str, Any]:
    """One usage row per request: at least one status-200 row with tokens per completed
    request, and no more rows than requests completed plus those in flight at the ends."""
    counts = targets.usage_counts(args.python, db)
    counts = {k: v + bench.rows_removed.get(k, 0) for k, v in counts.items()}
    done, in_flight = bench.gateway_completed, bench.gateway_in_flight
    ok = (
        counts["ok_rows"] >= done - bench.gateway_errors
        and counts["rows"] <= done + in_flight
        and counts["ok_rows_with_tokens"] == counts["ok_rows"]
    )
    return {**counts, "completed": done, "in_flight_allowance": in_flight, "ok": ok}


def main() -> int:
    args = parse_args()
    preflight(args)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = RESULTS / f"run-{stamp}"
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.client_cpus:
        # This script is a client too (time-to-first-byte probe).
        os.sched_setaffinity(0, {int(c) for c in args.client_cpus.split(",")})
    skip = set(filter(None, args.skip.split(",")))
    with_litellm = not args.no_litellm and targets.litellm_installed() and not args.profile
    spy = profile.py_spy(args.python) if args.profile else None
    if args.profile and spy is None:
        print("py-spy is not installed: .venv/bin/pip install py-spy", file=sys.stderr)
        return 2
    db_cpus = args.db_cpus or args.client_cpus
    bench = Bench(
        duration_s=args.duration,
        client_cpus=args.client_cpus,
        max_noise=args.max_noise,
        retries=args.retries,
        database_cpus=None if db_cpus in (None, "", "any") or args.no_pin else db_cpus,
    )
    servers = ServerList(bench.our_pids)
    out: dict[str, Any] = {
        "started": stamp,
        "machine": machine(),
        "options": {k: v for k, v in vars(args).items() if k != "python"},
        "litellm": targets.litellm_version() if with_litellm else None,
    }
    print(
        f"pinning: server CPUs {args.server_cpus}, client CPUs {args.client_cpus}, "
        f"database backends {bench.database_cpus or 'any'}; "
        f"logs in {run_dir}"
    )
    code = out["machine"]
    dirty = f" + {len(code['uncommitted'])} uncommitted files" if code["uncommitted"] else ""
    print(f"code: {code['commit']}{dirty}")
    db = None
    try:
        up = {
            "upstream": targets.start_upstream("upstream", cpus=args.client_cpus, log_dir=run_dir),
            "slow": targets.start_upstream(
                "upstream-slow", cpus=args.client_cpus, log_dir=run_dir, latency_ms=args.latency_ms
            ),
            "drip": targets.start_upstream(
                "upstream-drip", cpus=args.client_cpus, log_dir=run_dir, chunk_delay_ms=5
            ),
        }
        servers.extend(up.values())
        urls = {name: s.url for name, s in up.items()}
        db = targets.fresh_database(args.db, args.database_url, run_dir)
        if args.db == "postgres":
            bench.database = urlsplit(args.database_url).path.lstrip("/")
        key = targets.gateway_setup(args.python, db, urls, limits=args.limits)
        gw = targets.start_gateway(
            "gateway", python=args.python, db=db, workers=1, cpus=args.server_cpus, log_dir=run_dir
        )
        servers.append(gw)
        # The --workers gateways start now too, so that every gateway of a run loads the same
        # code even when the tree changes meanwhile; they idle until their section.
        wk = []
        if "workers" not in skip:
            for n in (1, 2):
                server = targets.start_gateway(
                    f"gateway-w{n}",
                    python=args.python,
                    db=db,
                    workers=n,
                    cpus=None,
                    log_dir=run_dir,
                    serve=True,
                )
                servers.append(server)
                wk.append(Target(f"gateway-w{n}", server, key=key))
        main_targets = [Target("upstream", up["upstream"]), Target("gateway", gw, key=key)]
        if with_litellm:
            config = run_dir / "litellm" / "config.yaml"
            targets.write_litellm_config(config, urls)
            print("starting LiteLLM ...", flush=True)
            lt = targets.start_litellm(config=config, cpus=args.server_cpus, log_dir=run_dir)
            servers.append(lt)
            main_targets.append(Target("litellm", lt, key=targets.LITELLM_MASTER_KEY))
        warm_s = 1.0 if args.smoke else 3.0
        if args.profile:
            bench.warm(main_targets[1], warm_s)
            out["profile"] = profile.profile_under_load(
                bench, main_targets[1], exe=spy, seconds=args.profile, out_dir=RESULTS, stamp=stamp
            )
            (RESULTS / f"profile-{stamp}.json").write_text(json.dumps(out, indent=1))
            return 0
        for target in main_targets:
            bench.warm(target, warm_s)
            bench.warm(target, 1.0, model="bench-slow")

        print("== instant upstream: interleaved rounds", flush=True)
        bench.rounds("instant", main_targets, SCENARIOS, args.rounds)

        if "slow" not in skip:
            print(
                f"== {args.latency_ms} ms upstream, {args.slow_connections} connections", flush=True
            )
            slow_targets = [Target("upstream", up["slow"])] + [
                Target(t.name, t.server, key=t.key, model="bench-slow") for t in main_targets[1:]
            ]
            conns = args.slow_connections
            scen = {f"ns-c{conns}": (False, conns), f"st-c{conns}": (True, conns)}
            bench.rounds("slow", slow_targets, scen, args.rounds)

        if "ttfb" not in skip:
            print("== time to first byte (stream chunks 5 ms apart)", flush=True)
            out["ttfb"] = bench.ttfb(
                [Target("upstream", up["drip"]), *main_targets[1:]], 5 if args.smoke else 100
            )
            print(json.dumps(out["ttfb"], indent=1), flush=True)

        if "workers" not in skip:
            print("== --workers 1 vs 2, gateway not pinned", flush=True)
            for target in wk:
                bench.warm(target, warm_s)
            bench.rounds(
                "workers",
                wk,
                WORKER_SCENARIOS,
                args.rounds,
            )
            capped_workers(bench, wk, args)
            for target in wk:
                target.server.stop()

        if args.soak:
            print(f"== soak, {args.soak} min", flush=True)
            out["soak"] = bench.soak(main_targets[1], args.soak)
            out["soak"]["after"] = after_soak(bench, main_targets[1], args, db, run_dir)
    finally:
        # Graceful stop first: the gateway writes its pending usage rows at shutdown.
        for server in reversed(servers):
            server.stop()

    assert db is not None
    out["usage_check"] = usage_check(args, db, bench)
    out["runs"] = bench.rows
    return finish(out, bench, run_dir, stamp)


def after_soak(
    bench: Bench, gateway: Target, args: argparse.Namespace, db: targets.Database, run_dir: Path
) -> dict[str, Any]:
    """Tells apart what could make the end of a soak slower than its start: the same windows
    on a fresh gateway process over the grown usage table, then over an emptied one. Slow
    in both: the machine; fast in both: something in the old process; slow only over the
    grown table: the table."""
    window = 30.0
    gateway.server.stop()
    fresh = targets.start_gateway(
        "gateway-fresh",
        python=args.python,
        db=db,
        workers=1,
        cpus=args.server_cpus,
        log_dir=run_dir,
    )
    bench.our_pids.append(fresh.pid)
    target = Target("gateway-fresh", fresh, key=gateway.key)
    phases: dict[str, list[dict[str, Any]]] = {}
    try:
        bench.warm(target, 3.0)
        for phase in ("fresh process, grown table", "fresh process, empty table"):
            if phase.endswith("empty table"):
                for name, n in targets.usage_counts(args.python, db, "truncate").items():
                    bench.rows_removed[name] = bench.rows_removed.get(name, 0) + n
            phases[phase] = []
            for stream in (False, True):
                result, cpu, noise = bench.load(
                    target, stream=stream, connections=32, duration_s=window, model=target.model
                )
                sample = bench.window(target, stream, result, cpu, noise)
                phases[phase].append(sample)
                print(f"  [after soak: {phase}] {sample}", flush=True)
    finally:
        fresh.stop()
    return phases


def capped_workers(bench: Bench, wk: list[Target], args: argparse.Namespace) -> None:
    """``--workers 1`` against ``--workers 2`` with each worker capped at the same share of a
    core: what two cores would show, on a machine whose second core the load generator and
    the upstream need. When pinning, the capped workers share the server CPUs (two caps of
    0.4 fit in one core), so they never take time from the load generator's core."""
    reason = procs.CoreCaps.unavailable()
    if reason:
        print(f"== capped --workers comparison skipped: {reason}", flush=True)
        return
    share = args.worker_core_share
    print(f"== --workers 1 vs 2, each worker capped at {share:g} of a core", flush=True)
    caps = procs.CoreCaps(share)
    try:
        for target in wk:
            for pid in procs.worker_pids(target.server):
                caps.cap(pid)
            if args.server_cpus:
                procs.pin(procs.worker_pids(target.server), args.server_cpus)
        bench.rounds(
            "workers-capped",
            wk,
            WORKER_SCENARIOS,
            args.rounds,
        )
    finally:
        caps.release()


def finish(out: dict[str, Any], bench: Bench, run_dir: Path, stamp: str) -> int:
    rows = bench.rows
    names = ["upstream", "gateway", "litellm"]
    print("\n== instant upstream, 32 connections (medians over rounds)")
    print(report.throughput_table(rows, "instant", names, 32))
    print("\n== instant upstream, 1 connection; added = target - upstream direct")
    print(report.latency_table(rows, "instant", names))
    slow = [r for r in rows if r["section"] == "slow"]
    if slow:
        conns = slow[0]["connections"]
        print(f"\n== slow upstream, {conns} connections")
        print(report.throughput_table(rows, "slow", names, conns))
    workers_sections = (
        ("workers", "not pinned; RSS is the whole process tree", "workers_scaling"),
        ("workers-capped", "each capped at the same share of a core", "workers_capped_scaling"),
    )
    for section, title, key in workers_sections:
        if any(r["section"] == section for r in rows):
            print(f"\n== gateway --workers 1 vs 2 ({title})")
            print(report.throughput_table(rows, section, ["gateway-w1", "gateway-w2"], 32))
            out[key] = report.scaling(rows, section)
            print(f"2 workers / 1 worker: {out[key]}")
    if out.get("soak"):
        print("\n== soak")
        print(report.soak_table(out["soak"]))
    out["ratios"] = report.ratios(rows, "instant")
    if any(r["target"] == "litellm" for r in rows):
        print("\n== gateway vs LiteLLM")
        for name, value in out["ratios"].items():
            print(f"  {name}: {value if value is not None else '-'}")
    out["summary"] = {
        f"{section}/{target}/{scenario}": s
        for section in ("instant", "slow", "workers", "workers-capped")
        for target in [*names, "gateway-w1", "gateway-w2"]
        for scenario in {r["scenario"] for r in rows}
        if (s := report.summary(rows, section, target, scenario)) is not None
    }
    checks = report.target_checks(
        rows, "instant", out.get("soak"), out.get("ttfb"), out.get("workers_capped_scaling")
    )
    out["checks"] = [
        dict(zip(("target", "measured", "wanted", "met"), c, strict=True)) for c in checks
    ]
    print("\n" + report.checks_table(checks))
    usage = out["usage_check"]
    print(
        f"\nusage rows: {usage['rows']} ({usage['ok_rows']} ok, {usage['ok_rows_with_tokens']} "
        f"with tokens) for {usage['completed']} completed gateway requests "
        f"(+ up to {usage['in_flight_allowance']} in flight): {'ok' if usage['ok'] else 'MISMATCH'}"
    )
    print(f"gateway errors: {bench.gateway_errors}")
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"bench-{stamp}.json"
    path.write_text(json.dumps(out, indent=1, default=str))
    (RESULTS / "latest.json").write_text(path.read_text())
    print(f"results: {path}")
    failed = bench.gateway_errors > 0 or not usage["ok"] or bench.gateway_completed == 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
