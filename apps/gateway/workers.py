"""``serve --workers N``: N uvicorn processes, each listening on its own SO_REUSEPORT socket.

uvicorn's own supervisor gives every worker the same listening socket, and the first worker to
wake up accepts a whole burst of new connections: a client that opens its connections at once
(a load balancer, a pool warming up) can end up with all of them on one worker while the others
idle. With a socket per worker in one SO_REUSEPORT group, the kernel spreads new connections
over the workers by a hash of their addresses (Linux ``socket(7)``), so N workers take N
shares. The parent only supervises: it restarts a worker that dies and, on SIGINT or SIGTERM,
passes SIGTERM on so that each worker finishes its requests and writes its usage rows.
A worker that crashes takes the connections waiting in its socket's queue with it (they are
reset); new connections go to the other workers until its replacement listens. A supervisor
that is killed outright (SIGKILL, the OOM killer) cannot pass anything on, so each worker asks
the kernel for a SIGTERM when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and stops
gracefully then, instead of serving on as an orphan.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from typing import Any

logger = logging.getLogger("uvicorn.error")

RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0)


def reuse_port_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` in that address's SO_REUSEPORT group (not yet
    listening: uvicorn's server listens on it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def stop_with_parent(parent: int) -> None:
    """SIGTERM this process when ``parent`` dies; now if it already has. A no-op off Linux."""
    if not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        logger.warning("prctl(PR_SET_PDEATHSIG) failed: errno %d", ctypes.get_errno())
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)


def run_worker(
    app: str, host: str, port: int, uvicorn_options: dict[str, Any], parent: int
) -> None:
    """One worker process: its own socket, one uvicorn server, until SIGTERM (its own, or
    its supervisor's death)."""
    stop_with_parent(parent)
    import django

    django.setup()
    import uvicorn

    sock = listening_socket(host, port)
    config = uvicorn.Config(app, host=host, port=port, workers=1, **uvicorn_options)
    uvicorn.Server(config).run(sockets=[sock])


def _forget_metrics_of(pid: int) -> None:
    """A dead worker's live gauges (in-flight calls, queue depth) no longer count."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


class Supervisor:
    """Starts ``workers`` processes, restarts those that die, stops them all on a signal."""

    def __init__(
        self, app: str, host: str, port: int, workers: int, uvicorn_options: dict[str, Any]
    ) -> None:
        self.args = (app, host, port, uvicorn_options)
        self.workers = workers
        self.context = multiprocessing.get_context("spawn")
        self.processes: list[Any] = []
        self.stopping = False

    def _spawn(self) -> Any:
        process = self.context.Process(
            target=run_worker, args=(*self.args, os.getpid()), daemon=False
        )
        process.start()
        return process

    def _stop(self, signum: int, _frame: object) -> None:
        self.stopping = True

    def run(self) -> int:
        # Bind once here so that a port already taken fails now, with a clear message.
        listening_socket(self.args[1], self.args[2]).close()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._stop)
        self.processes = [self._spawn() for _ in range(self.workers)]
        logger.info("started %d workers (SO_REUSEPORT): %s", self.workers, self.pids())
        failures = 0
        while not self.stopping:
            time.sleep(0.2)
            for i, process in enumerate(self.processes):
                if process.is_alive() or self.stopping:
                    continue
                delay = RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)]
                logger.error(
                    "worker %s exited with %s; restarting in %.1f s",
                    process.pid,
                    process.exitcode,
                    delay,
                )
                time.sleep(delay)
                failures += 1
                _forget_metrics_of(process.pid)
                self.processes[i] = self._spawn()
        return self.shutdown()

    def shutdown(self) -> int:
        """SIGTERM to every worker (uvicorn's graceful shutdown), then wait for them."""
        for process in self.processes:
            if process.is_alive() and process.pid is not None:
                os.kill(process.pid, signal.SIGTERM)
        code = 0
        for process in self.processes:
            process.join()
            if process.exitcode not in (0, -signal.SIGTERM):
                code = 1
        return code

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes if p.pid is not None]
