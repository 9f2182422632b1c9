"""One measurement (a wrk run with the server's CPU time and memory around it) and the
sections built from them: interleaved rounds, time to first byte, soak."""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass, field
from typing import Any

from benchlib import procs
from benchlib.load import WrkResult, run_wrk, ttfb_probe
from benchlib.targets import Target

MIB = 1024 * 1024

# name -> (stream, connections)
SCENARIOS = {
    "ns-c32": (False, 32),
    "st-c32": (True, 32),
    "ns-c1": (False, 1),
    "st-c1": (True, 1),
}
# The --workers comparisons: throughput at 32 connections.
WORKER_SCENARIOS = {name: SCENARIOS[name] for name in ("ns-c32", "st-c32")}


@dataclass
class Bench:
    duration_s: float
    client_cpus: str | None
    settle_s: float = 1.0
    # Other load on the machine (cores busy with processes that are not the benchmark's): a
    # run during which it exceeds ``max_noise`` is repeated up to ``retries`` times.
    max_noise: float = 0.15
    retries: int = 2
    our_pids: list[int] = field(default_factory=list)
    database: str = ""
    # Where the benchmark database's backends run: off the server's CPU, as on a database
    # host of its own (None: wherever the scheduler puts them).
    database_cpus: str | None = None
    last_worker_cpu: list[float] = field(default_factory=list)
    last_machine_busy: float = 0.0
    last_steal_cores: float = 0.0
    last_db_cpu: float = 0.0
    # Usage rows removed by the soak's table check, added back for the usage-row check.
    rows_removed: dict[str, int] = field(default_factory=dict)
    rows: list[dict[str, Any]] = field(default_factory=list)
    # Requests the gateways completed, and how many more may have been in flight at the end of
    # a run (one per connection): the usage-row check allows for the latter.
    gateway_completed: int = 0
    gateway_in_flight: int = 0
    gateway_errors: int = 0

    def _count(self, target: Target, result: WrkResult, connections: int) -> None:
        if target.name.startswith("gateway"):
            self.gateway_completed += result.requests
            self.gateway_in_flight += connections
            self.gateway_errors += result.error_count

    def _ours(self) -> float:
        """CPU seconds of everything the benchmark runs: servers, wrk, its database backends."""
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        total = children.ru_utime + children.ru_stime
        total += sum(procs.cpu_seconds(pid) for pid in self.our_pids)
        if self.database:
            total += procs.database_backends_cpu_seconds(self.database)
        return total

    def load(
        self, target: Target, *, stream: bool, connections: int, duration_s: float, model: str
    ) -> tuple[WrkResult, float, float]:
        """Run wrk against ``target``; returns the result, the server's CPU seconds used
        (during the run plus ``settle_s`` after it, so batched work such as the usage writer's
        flush is counted) and the other load on the machine meanwhile, in cores."""
        if self.database and self.database_cpus:
            # Backends opened since the last run (the gateway's pool grows on demand).
            procs.pin(procs.database_backends(self.database), self.database_cpus)
        t0 = time.monotonic()
        busy0, ours0 = procs.machine_busy_seconds(), self._ours()
        steal0 = procs.machine_steal_seconds()
        db0 = procs.database_backends_cpu_seconds(self.database) if self.database else 0.0
        cpu0 = procs.cpu_seconds(target.server.pid)
        workers = procs.worker_pids(target.server)
        by_worker0 = {pid: procs.cpu_seconds(pid) for pid in workers}
        result = run_wrk(
            target.url,
            stream=stream,
            connections=connections,
            duration_s=duration_s,
            key=target.key,
            model=model,
            cpus=self.client_cpus,
        )
        time.sleep(self.settle_s)
        cpu = procs.cpu_seconds(target.server.pid) - cpu0
        # How the work spread over the worker processes (one entry with a single worker).
        self.last_worker_cpu = [
            round(procs.cpu_seconds(pid) - start, 2) for pid, start in by_worker0.items()
        ]
        busy = procs.machine_busy_seconds() - busy0
        others = busy - (self._ours() - ours0)
        elapsed = time.monotonic() - t0
        self.last_steal_cores = (procs.machine_steal_seconds() - steal0) / elapsed
        if self.database:
            self.last_db_cpu = procs.database_backends_cpu_seconds(self.database) - db0
        self.last_machine_busy = busy / elapsed
        self._count(target, result, connections)
        return result, cpu, max(0.0, others / elapsed)

    def measure(
        self,
        section: str,
        round_no: int,
        target: Target,
        scenario: str,
        *,
        stream: bool,
        connections: int,
        model: str | None = None,
    ) -> dict[str, Any]:
        best: tuple[WrkResult, float, float] | None = None
        for attempt in range(1 + self.retries):
            if attempt:
                time.sleep(2.0)
            outcome = self.load(
                target,
                stream=stream,
                connections=connections,
                duration_s=self.duration_s,
                model=model or target.model,
            )
            if best is None or outcome[2] < best[2]:
                best, worker_cpu, busy = outcome, self.last_worker_cpu, self.last_machine_busy
            if best[2] <= self.max_noise:
                break
            if attempt < self.retries:
                print(f"  (other processes kept {outcome[2]:.2f} cores busy: again)", flush=True)
        result, cpu, noise = best
        rss = procs.rss_bytes(target.server.pid)
        workers = procs.worker_pids(target.server)
        row = {
            "section": section,
            "round": round_no,
            "target": target.name,
            "scenario": scenario,
            "stream": stream,
            "connections": connections,
            "wrk": result.as_dict(),
            "cpu_s": round(cpu, 3),
            "cpu_ms_per_req": round(1000 * cpu / result.requests, 4) if result.requests else None,
            "rss_mib": round(sum(rss.values()) / MIB, 1),
            "rss_worker_mib": round(max(rss.get(p, 0) for p in workers) / MIB, 1),
            "other_load_cores": round(noise, 2),
            "attempts": attempt + 1,
            "cpu_s_by_worker": worker_cpu,
            # All CPUs, everything included: how close the machine itself was to saturation.
            "machine_busy_cores": round(busy, 2),
        }
        self.rows.append(row)
        errors = f" errors={result.errors}" if result.error_count else ""
        print(
            f"  [{section} r{round_no}] {target.name:<10} {scenario:<8} "
            f"{result.rps:9.1f}/s p50={result.latency_us['p50'] / 1e3:8.3f}ms "
            f"p99={result.latency_us['p99'] / 1e3:8.3f}ms "
            f"cpu={row['cpu_ms_per_req'] or 0:.3f}ms/req rss={row['rss_mib']}MiB "
            f"other={noise:.2f}{errors}"
            + (f" cpu_s_by_worker={worker_cpu}" if len(worker_cpu) > 1 else ""),
            flush=True,
        )
        return row

    def warm(self, target: Target, seconds: float, model: str | None = None) -> None:
        """Fill caches and connection pools before measuring (not recorded)."""
        for stream in (False, True):
            self.load(
                target,
                stream=stream,
                connections=32,
                duration_s=seconds,
                model=model or target.model,
            )

    def rounds(
        self,
        section: str,
        targets: list[Target],
        scenarios: dict[str, tuple[bool, int]],
        rounds: int,
    ) -> None:
        """Every scenario on every target, round after round; the target order rotates each
        round so that no target always runs first or last."""
        for r in range(1, rounds + 1):
            shift = (r - 1) % len(targets)
            order = targets[shift:] + targets[:shift]
            for name, (stream, connections) in scenarios.items():
                for target in order:
                    self.measure(section, r, target, name, stream=stream, connections=connections)

    def ttfb(self, targets: list[Target], samples: int) -> dict[str, Any]:
        """Time to first byte of streams from the drip upstream (chunks spaced in time), so a
        gateway that buffered would show the whole stream's duration here."""
        out: dict[str, Any] = {}
        for target in targets:
            probe = ttfb_probe(target.url, key=target.key, model="bench-drip", samples=samples)
            if target.name.startswith("gateway") and probe is not None:
                self.gateway_completed += samples
            out[target.name] = probe
        base = out.get("upstream")
        for name, probe in out.items():
            if probe is not None and base is not None and name != "upstream":
                probe["added_ttfb_p50_ms"] = round(probe["ttfb_p50_ms"] - base["ttfb_p50_ms"], 3)
        return out

    def window(
        self, target: Target, stream: bool, result: WrkResult, cpu: float, noise: float
    ) -> dict[str, Any]:
        """What one load window of the soak shows: throughput, the gateway's and the
        database's CPU per request, other load, the hypervisor's steal, the worker's RSS."""
        rss = procs.rss_bytes(target.server.pid)
        workers = procs.worker_pids(target.server)
        n = result.requests
        return {
            "stream": stream,
            "rps": round(result.rps, 1),
            "cpu_ms_per_req": round(1000 * cpu / n, 4) if n else None,
            "db_cpu_ms_per_req": round(1000 * self.last_db_cpu / n, 4) if n else None,
            "errors": result.error_count,
            "other_load_cores": round(noise, 2),
            "steal_cores": round(self.last_steal_cores, 3),
            "rss_worker_mib": round(max(rss.get(p, 0) for p in workers) / MIB, 1),
        }

    def soak(self, target: Target, minutes: float, window_s: float = 30.0) -> dict[str, Any]:
        """Alternate non-stream and stream load at 32 connections for ``minutes``, sampling
        the workers' resident memory after each window."""
        samples = []
        t0 = time.monotonic()
        end = t0 + minutes * 60
        stream = False
        while time.monotonic() < end:
            span = max(1.0, min(window_s, end - time.monotonic()))
            result, cpu, noise = self.load(
                target, stream=stream, connections=32, duration_s=span, model=target.model
            )
            sample = {
                "t_min": round((time.monotonic() - t0) / 60, 2),
                **self.window(target, stream, result, cpu, noise),
            }
            samples.append(sample)
            print(f"  [soak] {sample}", flush=True)
            stream = not stream
        first = samples[0]["rss_worker_mib"]
        half = samples[len(samples) // 2 :]
        slope = None
        if len(half) >= 2 and half[-1]["t_min"] > half[0]["t_min"]:
            slope = (half[-1]["rss_worker_mib"] - half[0]["rss_worker_mib"]) / (
                half[-1]["t_min"] - half[0]["t_min"]
            )
        return {
            "minutes": minutes,
            "samples": samples,
            "first_mib": first,
            "last_mib": samples[-1]["rss_worker_mib"],
            "max_mib": max(s["rss_worker_mib"] for s in samples),
            "growth_mib": round(samples[-1]["rss_worker_mib"] - first, 1),
            "second_half_slope_mib_per_min": round(slope, 3) if slope is not None else None,
        }
