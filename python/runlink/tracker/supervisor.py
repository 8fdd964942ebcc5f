"""`runlink server --workers N`: N worker processes, each with its own listening socket on the same port
(SO_REUSEPORT), under a small supervisor.

Why not uvicorn's own multi-process mode: there all workers share one socket, and the first worker to wake
accepts every connection waiting at that moment. Agents keep their connections open, so after a start or a
burst one worker can end up owning them all while the other cores idle (the ingest benchmark showed one
worker at 100 % CPU and the other at 0 %). With a socket per worker the kernel spreads connections across
workers by their address hash, whatever their timing.

The hash places each connection once, so a few long-lived connections can still land unevenly: the workers share
their loads and an overloaded one hands connections back (worker_balance.py).

The supervisor forwards SIGINT/SIGTERM, and restarts a worker that dies (with a back-off, so a worker that
cannot start does not spin).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import time
from typing import Any

log = logging.getLogger("runlink.tracker")

RESTART_BACKOFF_S = 1.0
STOP_GRACE_S = 15.0


def reuseport_supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _refuse_if_served(host: str, port: int) -> None:
    """SO_REUSEPORT lets a second tracker of the same user bind the same port and silently take half of its
    connections: refuse to start when something already answers there."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)
    try:
        with socket.create_connection((target, port), timeout=0.5):
            pass
    except OSError:
        return
    raise SystemExit(f"runlink server: port {port} on {host} is already in use")


def _worker(app: str, host: str, port: int, log_level: str, loads: Any, index: int) -> None:
    import uvicorn
    from uvicorn.importer import import_from_string

    from runlink.tracker.worker_balance import Loads, RebalanceMiddleware

    sock = _listen(host, port)
    asgi = RebalanceMiddleware(import_from_string(app)(), Loads(loads, index))
    config = uvicorn.Config(asgi, log_level=log_level, access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def serve(app: str, host: str, port: int, workers: int, log_level: str = "info") -> int:
    """Run `workers` processes of the app factory `app` ("module:function") until SIGINT/SIGTERM."""
    context = multiprocessing.get_context("spawn")
    _refuse_if_served(host, port)
    probe = _listen(host, port)  # fail here, clearly, when the port is taken; the workers bind beside it
    stopping = False
    loads = context.RawArray("i", workers)  # requests in flight per worker (worker_balance.Loads)

    def start(index: int) -> Any:
        loads[index] = 0  # a worker that died mid-request left its count behind
        process = context.Process(target=_worker, args=(app, host, port, log_level, loads, index), daemon=False)
        process.start()
        return process

    def stop(_signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes = [start(index) for index in range(workers)]
    probe.close()
    try:
        while not stopping:
            multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.5)
            for index, process in enumerate(processes):
                if process.exitcode is not None and not stopping:
                    log.warning("runlink: tracker worker %s exited (%s); restarting it", process.pid,
                                process.exitcode)
                    time.sleep(RESTART_BACKOFF_S)
                    processes[index] = start(index)
    finally:
        for process in processes:
            if process.exitcode is None:
                process.terminate()  # uvicorn shuts down gracefully on SIGTERM
        deadline = time.monotonic() + STOP_GRACE_S
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.exitcode is None:
                process.kill()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
