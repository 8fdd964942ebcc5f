"""A `runlink server` subprocess: start it, wait until it answers /healthz, stop it. The tests, the benchmarks and
anything else that needs a real tracker on this machine start it here, so there is one way to do it.

The child runs the same runlink source as its starter (this package's folder leads PYTHONPATH), writes its
output to a log file (the tail of which an early exit raises with), and gets a free port unless given one. A
fixed port survives `stop()`/`kill()` and `start()` again: clients keep their URL across a restart.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType

import requests

SOURCE = Path(__file__).resolve().parents[2]  # the folder holding the `runlink` package
PORT_ATTEMPTS = 3


class TrackerStartError(RuntimeError):
    """The server exited, or did not answer /healthz, before its deadline (the message ends with its log tail)."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on now (connections to it are refused until someone binds it)."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class TrackerProcess:
    """One `runlink server` on `host:port` with its state in `home` (SQLite there unless `db_url` names one).

    `url`, `port`, `process`, `log_path` and, once started, `token` (the admin token the server wrote to
    `home/token`). Usable as a context manager: entering starts and waits, leaving stops."""

    def __init__(self, home: Path | str, db_url: str | None = None, *, port: int | None = None,
                 host: str = "127.0.0.1", open_reads: bool = False, workers: int = 1,
                 extra_args: Sequence[str] = (), env: Mapping[str, str] | None = None,
                 python: str | None = None, log_path: Path | None = None, cwd: Path | str | None = None,
                 start_deadline_s: float = 60.0, new_session: bool = False) -> None:
        self.home = Path(home)
        self.db_url = db_url
        self.host = host
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.open_reads = open_reads
        self.workers = workers
        self.extra_args = tuple(extra_args)
        self.env = dict(env or {})
        # RUNLINK_SERVER_PYTHON: an interpreter with the server extra, for callers whose own lacks it
        self.python = python or os.environ.get("RUNLINK_SERVER_PYTHON") or sys.executable
        self.log_path = log_path or self.home / "server.log"
        self.cwd = cwd
        self.start_deadline_s = start_deadline_s
        self.new_session = new_session  # its own session: a terminal's Ctrl-C or hang-up does not reach it
        self.process: subprocess.Popen | None = None
        self.token: str | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"TrackerProcess(url={self.url!r}, home={str(self.home)!r})"

    def __enter__(self) -> TrackerProcess:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.stop()

    def command(self) -> list[str]:
        args = [self.python, "-m", "runlink", "server", "--host", self.host, "--port", str(self.port),
                "--home", str(self.home)]
        if self.db_url:
            args += ["--db", self.db_url]
        if self.open_reads:
            args.append("--open")
        if self.workers != 1:
            args += ["--workers", str(self.workers)]
        return [*args, *self.extra_args]

    def start(self) -> TrackerProcess:
        """Launch and wait until /healthz answers 200; a free port taken meanwhile by another is retried."""
        self.home.mkdir(parents=True, exist_ok=True)
        for _ in range(1 if self.fixed_port else PORT_ATTEMPTS):
            offset = self.log_path.stat().st_size if self.log_path.exists() else 0
            self._launch()
            try:
                self.wait_healthy()
            except TrackerStartError:
                if self.fixed_port or "address already in use" not in self.log(offset).lower():
                    raise
                self.port = free_port(self.host)
                continue
            token_file = self.home / "token"
            self.token = token_file.read_text("utf-8").strip() if token_file.exists() else None
            return self
        raise TrackerStartError(f"no free port for the tracker after {PORT_ATTEMPTS} attempts")

    def _launch(self) -> None:
        path = os.pathsep.join(p for p in (str(SOURCE), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "RUNLINK_HOME": str(self.home), "PYTHONPATH": path, **self.env}
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.cwd, start_new_session=self.new_session)

    def healthy(self) -> bool:
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def wait_healthy(self, deadline_s: float | None = None) -> None:
        """Poll /healthz until 200; raise (and stop the server) at the deadline or when it exits first."""
        assert self.process is not None, "start() first"
        deadline = time.monotonic() + (self.start_deadline_s if deadline_s is None else deadline_s)
        while not self.healthy():
            if self.process.poll() is not None:
                raise TrackerStartError(f"runlink server exited with {self.process.returncode} before answering "
                                        f"/healthz at {self.url}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise TrackerStartError(f"runlink server did not answer /healthz at {self.url} within "
                                        f"{self.start_deadline_s:g}s:\n{self.log_tail()}")
            time.sleep(0.05)  # polling interval; the condition is /healthz answering

    def log(self, offset: int = 0) -> str:
        """The server's output so far (from byte `offset`)."""
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(offset)
                return handle.read().decode("utf-8", errors="replace")
        except OSError:
            return ""

    def log_tail(self, chars: int = 4000) -> str:
        return self.log()[-chars:]

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, wait up to `timeout_s`, then SIGKILL."""
        if not self.running():
            return
        assert self.process is not None
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL, as a crash would (no shutdown handlers run)."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)


def start_tracker(home: Path | str, db_url: str | None = None, **options: object) -> TrackerProcess:
    """Start a tracker and wait until it is healthy (`TrackerProcess(...).start()`)."""
    return TrackerProcess(home, db_url, **options).start()  # type: ignore[arg-type]
