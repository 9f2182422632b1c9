"""Server processes: start (optionally pinned to CPUs), wait until they answer, stop; and read
their CPU time and resident memory from /proc, summed over the process and its descendants."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def taskset_prefix(cpus: str | None) -> list[str]:
    """``taskset -c CPUS`` when pinning, else nothing."""
    return ["taskset", "-c", cpus] if cpus else []


@dataclass
class Server:
    """A process the benchmark started and measures."""

    name: str
    url: str
    proc: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive():
            return
        # The whole group: uvicorn's worker processes and LiteLLM's children go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def log_tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def start(
    name: str,
    url: str,
    argv: list[str],
    *,
    cpus: str | None,
    env: dict[str, str],
    cwd: Path,
    log_path: Path,
) -> Server:
    """Start ``argv`` in its own process group, output to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(
        taskset_prefix(cpus) + argv,
        cwd=cwd,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    log.close()
    return Server(name=name, url=url, proc=proc, log_path=log_path)


def wait_http(server: Server, path: str, timeout: float = 60.0) -> None:
    """Wait until GET ``path`` answers (any status below 500). Raises RuntimeError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"{server.name} exited:\n{server.log_tail()}")
        try:
            with urllib.request.urlopen(server.url + path, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(
        f"{server.name} did not answer {path} in {timeout:.0f}s:\n{server.log_tail()}"
    )


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may contain spaces: split after the last ')'.
        fields = stat[stat.rindex(")") + 2 :].split()
        tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its live descendants."""
    tree = _children()
    out, todo = [], [pid]
    while todo:
        current = todo.pop()
        out.append(current)
        todo.extend(tree.get(current, ()))
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of ``pid`` and its live descendants (all threads), in seconds."""
    return sum(cpu_seconds_of(p) for p in process_tree(pid))


def cpu_seconds_of(pid: int) -> float:
    """User + system CPU time of one process (all its threads), 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (fields 14 and 15)


def rss_bytes(pid: int) -> dict[int, int]:
    """Resident memory of ``pid`` and each live descendant, by pid."""
    out = {}
    for p in process_tree(pid):
        try:
            statm = Path(f"/proc/{p}/statm").read_text().split()
        except OSError:
            continue
        out[p] = int(statm[1]) * PAGE
    return out


def worker_pids(server: Server) -> list[int]:
    """The processes that serve requests: the children when there are any, else the process
    itself (uvicorn runs a single worker in-process and forks N > 1 workers)."""
    tree = _children()
    kids = tree.get(server.pid, [])
    # Skip the ``taskset`` wrapper: taskset execs, so the pid is the server itself.
    return kids or [server.pid]


def machine_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot, all CPUs (from /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def machine_steal_seconds() -> float:
    """CPU seconds the hypervisor gave to other guests while this machine wanted them (the
    ``steal`` column of /proc/stat), all CPUs."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    return int(fields[7]) / CLK_TCK if len(fields) > 7 else 0.0


def database_backends(database: str) -> list[int]:
    """PIDs of the PostgreSQL backends serving ``database`` (their process title names it)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"postgres: ") and f" {database} ".encode() in cmdline:
            pids.append(int(entry.name))
    return pids


def cpu_list(cpus: str) -> set[int]:
    """``0``, ``0,2`` or ``0-3`` (taskset's list format) as a set of CPU numbers."""
    wanted: set[int] = set()
    for part in cpus.split(","):
        first, _, last = part.partition("-")
        wanted.update(range(int(first), int(last or first) + 1))
    return wanted


def pin(pids: list[int], cpus: str) -> None:
    """Move running processes, every thread of each, to ``cpus`` (threads they start later
    inherit it)."""
    wanted = cpu_list(cpus)
    for pid in pids:
        try:
            threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
        except OSError:
            threads = [pid]
        for tid in threads:
            with contextlib.suppress(OSError):  # the thread is gone
                os.sched_setaffinity(tid, wanted)


def database_backends_cpu_seconds(database: str) -> float:
    """CPU seconds of the PostgreSQL backends serving ``database`` (their process title names
    it), so the benchmark's own database work is not counted as other load."""
    return sum(cpu_seconds_of(pid) for pid in database_backends(database))


CPU_CGROUP = Path("/sys/fs/cgroup/cpu")


class CoreCaps:
    """Puts processes each in a cgroup of its own, limited to ``share`` of one core (cgroup
    v1 CFS bandwidth control). On a machine with too few cores to give every worker, the load
    generator and the upstream a core each, N capped workers stand in for N small cores: the
    load generator and the upstream keep the rest of the machine, and a gateway whose workers
    share nothing scales with N. Needs root and the v1 ``cpu`` controller."""

    def __init__(self, share: float, period_us: int = 10_000) -> None:
        self.share = share
        self.period_us = period_us
        self.groups: list[Path] = []

    @staticmethod
    def unavailable() -> str | None:
        """Why caps cannot be set here, or None."""
        if not (CPU_CGROUP / "cpu.cfs_quota_us").exists():
            return f"no cgroup v1 cpu controller at {CPU_CGROUP}"
        if not os.access(CPU_CGROUP / "cgroup.procs", os.W_OK):
            return f"{CPU_CGROUP} is not writable (not root?)"
        return None

    def cap(self, pid: int) -> None:
        group = CPU_CGROUP / f"gateway-bench-{os.getpid()}-{pid}"
        group.mkdir(exist_ok=True)
        (group / "cpu.cfs_period_us").write_text(str(self.period_us))
        (group / "cpu.cfs_quota_us").write_text(str(int(self.share * self.period_us)))
        (group / "cgroup.procs").write_text(str(pid))  # moves every thread of the process
        self.groups.append(group)

    def release(self) -> None:
        for group in self.groups:
            try:
                pids = (group / "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                with contextlib.suppress(OSError):  # the process is gone
                    (CPU_CGROUP / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                group.rmdir()
        self.groups = []

    def throttled_s(self) -> float:
        """Seconds the capped processes were held back by their quota, in all."""
        total = 0
        for group in self.groups:
            try:
                for line in (group / "cpu.stat").read_text().splitlines():
                    name, _, value = line.partition(" ")
                    if name == "throttled_time":
                        total += int(value)
            except OSError:
                continue
        return total / 1e9
