"""Medians over rounds, the printed tables, the ratios and the issue's targets."""

from __future__ import annotations

import statistics
from typing import Any

Row = dict[str, Any]

# The performance targets, per gateway worker (see bench/README.md).
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_P99_MS = 5.0
TARGET_RPS = 2000.0
TARGET_STREAMS = 1500.0
TARGET_VS_LITELLM = 20.0
TARGET_CPU_MS = 0.5
TARGET_RSS_MIB = 150.0
# "Near-linear" read as at least 90 % of linear: 2 workers give 1.8x one worker.
TARGET_SCALING = 1.8


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def pick(rows: list[Row], section: str, target: str, scenario: str) -> list[Row]:
    return [
        r
        for r in rows
        if r["section"] == section and r["target"] == target and r["scenario"] == scenario
    ]


def summary(rows: list[Row], section: str, target: str, scenario: str) -> Row | None:
    """Median figures of one target and scenario over the rounds, None when never measured."""
    runs = pick(rows, section, target, scenario)
    if not runs:
        return None
    base = pick(rows, section, "upstream", scenario)
    by_round = {r["round"]: r for r in base}
    added50, added99 = [], []
    for r in runs:
        ref = by_round.get(r["round"])
        if ref is not None and target != "upstream":
            added50.append((r["wrk"]["latency_us"]["p50"] - ref["wrk"]["latency_us"]["p50"]) / 1e3)
            added99.append((r["wrk"]["latency_us"]["p99"] - ref["wrk"]["latency_us"]["p99"]) / 1e3)
    return {
        "rps": _median([r["wrk"]["rps"] for r in runs]),
        "p50_ms": _median([r["wrk"]["latency_us"]["p50"] / 1e3 for r in runs]),
        "p99_ms": _median([r["wrk"]["latency_us"]["p99"] / 1e3 for r in runs]),
        "added_p50_ms": _median(added50),
        "added_p99_ms": _median(added99),
        "cpu_ms_per_req": _median([r["cpu_ms_per_req"] for r in runs if r["cpu_ms_per_req"]]),
        "rss_mib": max(r["rss_mib"] for r in runs),
        "rss_worker_mib": max(r["rss_worker_mib"] for r in runs),
        "requests": sum(r["wrk"]["requests"] for r in runs),
        "errors": sum(sum(r["wrk"]["errors"].values()) for r in runs),
        "other_load_cores": max(r.get("other_load_cores", 0.0) for r in runs),
        "rounds": len(runs),
    }


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def table(headers: list[str], body: list[list[str]]) -> str:
    widths = [max(len(h), *(len(row[i]) for row in body)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    lines.append("  ".join("-" * w for w in widths))
    for row in body:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def throughput_table(rows: list[Row], section: str, targets: list[str], conns: int) -> str:
    body = []
    for target in targets:
        ns = summary(rows, section, target, f"ns-c{conns}")
        st = summary(rows, section, target, f"st-c{conns}")
        if ns is None and st is None:
            continue
        ns, st = ns or {}, st or {}
        body.append(
            [
                target,
                _fmt(ns.get("rps"), ".0f"),
                _fmt(ns.get("p50_ms")),
                _fmt(ns.get("p99_ms")),
                _fmt(st.get("rps"), ".0f"),
                _fmt(st.get("p50_ms")),
                _fmt(st.get("p99_ms")),
                _fmt(ns.get("cpu_ms_per_req"), ".3f"),
                _fmt(st.get("cpu_ms_per_req"), ".3f"),
                _fmt(max(ns.get("rss_mib", 0), st.get("rss_mib", 0)), ".0f"),
                str(ns.get("errors", 0) + st.get("errors", 0)),
                _fmt(max(ns.get("other_load_cores", 0), st.get("other_load_cores", 0))),
            ]
        )
    headers = [
        f"c={conns}",
        "req/s",
        "p50 ms",
        "p99 ms",
        "streams/s",
        "p50 ms",
        "p99 ms",
        "CPU ms/req",
        "CPU ms/stream",
        "RSS MiB",
        "errors",
        "other load",
    ]
    return table(headers, body)


def latency_table(rows: list[Row], section: str, targets: list[str]) -> str:
    body = []
    for target in targets:
        ns = summary(rows, section, target, "ns-c1")
        st = summary(rows, section, target, "st-c1")
        if ns is None and st is None:
            continue
        ns, st = ns or {}, st or {}
        body.append(
            [
                target,
                _fmt(ns.get("p50_ms"), ".3f"),
                _fmt(ns.get("p99_ms"), ".3f"),
                _fmt(ns.get("added_p50_ms"), ".3f"),
                _fmt(ns.get("added_p99_ms"), ".3f"),
                _fmt(st.get("p50_ms"), ".3f"),
                _fmt(st.get("p99_ms"), ".3f"),
                _fmt(st.get("added_p50_ms"), ".3f"),
                _fmt(st.get("added_p99_ms"), ".3f"),
            ]
        )
    headers = ["c=1", "p50 ms", "p99 ms", "added p50", "added p99"]
    headers += ["stream p50", "stream p99", "added p50", "added p99"]
    return table(headers, body)


def ratios(rows: list[Row], section: str) -> dict[str, float | None]:
    def ratio(a: float | None, b: float | None) -> float | None:
        return round(a / b, 1) if a and b else None

    g = {
        s: summary(rows, section, "gateway", s) or {}
        for s in ("ns-c32", "st-c32", "ns-c1", "st-c1")
    }
    lt = {
        s: summary(rows, section, "litellm", s) or {}
        for s in ("ns-c32", "st-c32", "ns-c1", "st-c1")
    }
    return {
        "rps_gateway_over_litellm": ratio(g["ns-c32"].get("rps"), lt["ns-c32"].get("rps")),
        "streams_gateway_over_litellm": ratio(g["st-c32"].get("rps"), lt["st-c32"].get("rps")),
        "added_p50_litellm_over_gateway": ratio(
            lt["ns-c1"].get("added_p50_ms"), g["ns-c1"].get("added_p50_ms")
        ),
        "stream_added_p50_litellm_over_gateway": ratio(
            lt["st-c1"].get("added_p50_ms"), g["st-c1"].get("added_p50_ms")
        ),
        "cpu_litellm_over_gateway": ratio(
            lt["ns-c32"].get("cpu_ms_per_req"), g["ns-c32"].get("cpu_ms_per_req")
        ),
        "stream_cpu_litellm_over_gateway": ratio(
            lt["st-c32"].get("cpu_ms_per_req"), g["st-c32"].get("cpu_ms_per_req")
        ),
    }


def target_checks(
    rows: list[Row],
    section: str,
    soak: Row | None,
    ttfb: Row | None = None,
    capped_scaling: dict[str, float] | None = None,
) -> list[tuple[str, str, str, bool]]:
    """(target, measured, wanted, met) for the gateway."""
    out: list[tuple[str, str, str, bool]] = []

    def check(name: str, value: float | None, wanted: float, higher: bool, unit: str) -> None:
        if value is None:
            return
        met = value >= wanted if higher else value <= wanted
        sign = ">=" if higher else "<="
        out.append((name, f"{value:.3f} {unit}".strip(), f"{sign} {wanted:g} {unit}".strip(), met))

    ns1 = summary(rows, section, "gateway", "ns-c1") or {}
    st1 = summary(rows, section, "gateway", "st-c1") or {}
    ns32 = summary(rows, section, "gateway", "ns-c32") or {}
    st32 = summary(rows, section, "gateway", "st-c32") or {}
    check("added p50, non-stream, c=1", ns1.get("added_p50_ms"), TARGET_ADDED_P50_MS, False, "ms")
    check("added p50, stream, c=1", st1.get("added_p50_ms"), TARGET_ADDED_P50_MS, False, "ms")
    check("added p99, non-stream, c=1", ns1.get("added_p99_ms"), TARGET_ADDED_P99_MS, False, "ms")
    check("added p99, stream, c=1", st1.get("added_p99_ms"), TARGET_ADDED_P99_MS, False, "ms")
    check("requests/s, non-stream, c=32", ns32.get("rps"), TARGET_RPS, True, "")
    check("streams/s, c=32", st32.get("rps"), TARGET_STREAMS, True, "")
    r = ratios(rows, section)
    check("x LiteLLM, non-stream", r["rps_gateway_over_litellm"], TARGET_VS_LITELLM, True, "x")
    check("x LiteLLM, stream", r["streams_gateway_over_litellm"], TARGET_VS_LITELLM, True, "x")
    check("CPU per request", ns32.get("cpu_ms_per_req"), TARGET_CPU_MS, False, "ms")
    check("CPU per stream", st32.get("cpu_ms_per_req"), TARGET_CPU_MS, False, "ms")
    rss = max(ns32.get("rss_worker_mib", 0), st32.get("rss_worker_mib", 0)) or None
    check("RSS after load", rss, TARGET_RSS_MIB, False, "MiB")
    if soak is not None:
        check("RSS growth over the soak", soak.get("growth_mib"), 10.0, False, "MiB")
    gateway_ttfb = (ttfb or {}).get("gateway") or {}
    check("added time to first byte", gateway_ttfb.get("added_ttfb_p50_ms"), 1.0, False, "ms")
    for name in ("non-stream", "stream"):
        value = (capped_scaling or {}).get(name)
        check(f"2 workers / 1, capped, {name}", value, TARGET_SCALING, True, "x")
    return out


def checks_table(checks: list[tuple[str, str, str, bool]]) -> str:
    body = [
        [name, measured, wanted, "yes" if met else "NO"] for name, measured, wanted, met in checks
    ]
    return table(["gateway target", "measured", "target", "met"], body)


def soak_table(soak: Row) -> str:
    """Medians of the soak's windows by third, then the windows run after it."""
    samples = soak["samples"]
    thirds = [samples[i * len(samples) // 3 : (i + 1) * len(samples) // 3] for i in range(3)]
    phases: list[tuple[str, list[Row]]] = [
        (f"soak {i + 1}/3", part) for i, part in enumerate(thirds) if part
    ]
    phases += list((soak.get("after") or {}).items())
    body = []
    for name, windows in phases:
        line = [name]
        for stream in (False, True):
            picked = [w for w in windows if w["stream"] is stream]
            for field in ("rps", "cpu_ms_per_req", "db_cpu_ms_per_req"):
                spec = ".0f" if field == "rps" else ".3f"
                line.append(_fmt(_median([w[field] for w in picked if w.get(field)]), spec))
        line.append(_fmt(_median([w.get("steal_cores", 0) for w in windows]), ".3f"))
        line.append(_fmt(max((w["rss_worker_mib"] for w in windows), default=None), ".1f"))
        body.append(line)
    headers = ["window", "req/s", "CPU ms/req", "DB ms/req", "streams/s", "CPU ms/stream"]
    headers += ["DB ms/stream", "steal", "RSS MiB"]
    growth = f"RSS {soak['first_mib']} -> {soak['last_mib']} MiB (growth {soak['growth_mib']} MiB)"
    return table(headers, body) + "\n" + growth


def scaling(rows: list[Row], section: str) -> dict[str, float]:
    """Throughput of 2 workers over 1, non-stream and stream, and how evenly the 2 workers
    shared the work (the smaller worker's share of the CPU, 0.5 when even)."""
    out: dict[str, float] = {}
    for scenario, name in (("ns-c32", "non-stream"), ("st-c32", "stream")):
        w1 = summary(rows, section, "gateway-w1", scenario) or {}
        w2 = summary(rows, section, "gateway-w2", scenario) or {}
        if w1.get("rps") and w2.get("rps"):
            out[name] = round(w2["rps"] / w1["rps"], 2)
        # The two busiest children are the workers (the supervisor may have other, idle
        # children, such as multiprocessing's resource tracker).
        busiest = [
            sorted(r.get("cpu_s_by_worker") or [])[-2:]
            for r in pick(rows, section, "gateway-w2", scenario)
        ]
        shares = [min(pair) / sum(pair) for pair in busiest if len(pair) == 2 and sum(pair) > 0]
        if shares:
            out[f"{name} smaller worker's CPU share"] = round(min(shares), 2)
    return out
