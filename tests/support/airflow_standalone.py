"""A real `airflow standalone` for tests and benchmarks: its own AIRFLOW_HOME, a free port, a known admin password,
started in its own process group and stopped by killing that group.

Airflow 3 (API v2, JWT) by default: the Airflow of this interpreter. `python=` (or `RUNLINK_SYNCER_AIRFLOW_PYTHON`)
starts the Airflow of another interpreter/venv instead, e.g. `.venv-airflow2/bin/python` for Airflow 2.11 (API v1,
basic auth; the admin password is the one `standalone` writes to `standalone_admin_password.txt`).

Readiness is polled with deadlines (health endpoint, DAG parsed, run finished): no sleeps as synchronisation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from runlink.tracker.process import free_port
from support.waiting import wait_for

START_DEADLINE_S = 240.0
POLL_S = 0.5  # polling interval while waiting for a condition (not a synchronisation sleep)


def airflow_python() -> str:
    """The interpreter whose Airflow the tests start: RUNLINK_SYNCER_AIRFLOW_PYTHON, else this one."""
    return os.environ.get("RUNLINK_SYNCER_AIRFLOW_PYTHON") or sys.executable


def airflow_version(python: str | None = None) -> str:
    python = python or airflow_python()
    if python == sys.executable:
        import airflow

        return airflow.__version__
    out = subprocess.run([python, "-c", "import airflow; print(airflow.__version__)"], capture_output=True,
                         text=True, timeout=120, env={**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"})
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


@dataclass
class Standalone:
    home: Path
    port: int
    username: str
    password: str = field(repr=False)
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)
    python: str = sys.executable
    version: str = "3"
    _token: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_version(self) -> str:
        """"v2" (Airflow 3) or "v1" (Airflow 2.x)."""
        return "v2" if int(self.version.split(".")[0]) >= 3 else "v1"

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def token(self) -> str:
        if self._token is None:
            response = requests.post(self.url + "/auth/token",
                                     json={"username": self.username, "password": self.password}, timeout=30)
            response.raise_for_status()
            self._token = response.json()["access_token"]
        return self._token

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.api_version == "v1":
            response = requests.request(method, self.url + "/api/v1" + path, auth=(self.username, self.password),
                                        timeout=60, **kwargs)
            assert response.status_code < 400, (method, path, response.status_code, response.text[:1000])
            return response.json() if response.content else None
        headers = {"Authorization": f"Bearer {self.token()}"}
        response = requests.request(method, self.url + "/api/v2" + path, headers=headers, timeout=60, **kwargs)
        if response.status_code == 401:
            self._token = None
            headers = {"Authorization": f"Bearer {self.token()}"}
            response = requests.request(method, self.url + "/api/v2" + path, headers=headers, timeout=60, **kwargs)
        assert response.status_code < 400, (method, path, response.status_code, response.text[:1000])
        return response.json() if response.content else None

    def wait_for(self, what: str, check: Callable[[], Any], deadline_s: float,
                 ready: Callable[[Any], bool] = bool) -> Any:
        """`check()` once `ready` (by default: truthy; request errors and failed assertions count as "not yet");
        raises at once if Airflow exits, and with the last value and its log tail at the deadline."""
        return wait_for(self._while_alive(what, check), what, deadline_s, ready=ready, interval_s=POLL_S,
                        tolerate=(requests.RequestException, AssertionError), context=lambda: self.log()[-3000:])

    def _while_alive(self, what: str, check: Callable[[], Any]) -> Callable[[], Any]:
        def alive_then_check() -> Any:
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone exited while waiting for {what}:\n{self.log()[-4000:]}")
            return check()

        return alive_then_check

    def wait_healthy(self, deadline_s: float = START_DEADLINE_S) -> None:
        if self.api_version == "v1":  # 2.x: the DAG processor runs inside the scheduler (no own status)
            path, parts = "/health", ("metadatabase", "scheduler")
        else:
            path, parts = "/api/v2/monitor/health", ("metadatabase", "scheduler", "dag_processor")

        def healthy() -> bool:
            body = requests.get(self.url + path, timeout=5).json()
            return all((body.get(k) or {}).get("status") == "healthy" for k in parts)

        self.wait_for("airflow health", healthy, deadline_s)

    def wait_dag(self, dag_id: str, deadline_s: float = 180.0) -> None:
        self.wait_for(f"DAG {dag_id} parsed", lambda: self.api("GET", f"/dags/{dag_id}")["dag_id"] == dag_id,
                      deadline_s)

    def trigger(self, dag_id: str, logical_date: str | None, run_id: str | None = None,
                conf: Mapping[str, Any] | None = None) -> str:
        self.api("PATCH", f"/dags/{dag_id}", json={"is_paused": False})
        body: dict[str, Any] = {"logical_date": logical_date, "conf": dict(conf or {})}
        if run_id:
            body["dag_run_id"] = run_id
        for attempt in range(2):
            try:
                return self.api("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]
            except (AssertionError, requests.Timeout):
                # a trigger whose answer was lost (a timeout or a 5xx on a loaded machine) may have made the run:
                # asked again, Airflow says 409. A run under our own run id is the one we asked for.
                if run_id and self._has_run(dag_id, run_id):
                    return run_id
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def _has_run(self, dag_id: str, run_id: str) -> bool:
        try:
            return self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["dag_run_id"] == run_id
        except AssertionError:
            return False

    def wait_run(self, dag_id: str, run_id: str, deadline_s: float = 300.0) -> str:
        def finished() -> str | None:
            state = self.api("GET", f"/dags/{dag_id}/dagRuns/{run_id}")["state"]
            return state if state in ("success", "failed") else None

        return self.wait_for(f"run {run_id} finished", finished, deadline_s)

    def stop(self) -> None:
        stop_groups([self.process])


def stop_groups(processes: list[subprocess.Popen], grace_s: float = 30.0) -> None:
    """SIGTERM to each running process's group at once, then SIGKILL to those still running after `grace_s`, and
    to what is left of each one's session once its leader is gone (under load a DAG processor outlived `airflow
    standalone`, orphaned, still parsing DAGs hours later; Airflow 2's DagFileProcessorManager makes a process
    group of its own, so only its session still names it)."""
    running = [p for p in processes if p.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for process in running:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=30)
        _signal_group(process, signal.SIGKILL)  # the stragglers: its group, and its session when it leads one
        _kill_session(process.pid)


def _kill_session(sid: int) -> None:
    """SIGKILL every process of session `sid` (its leader's pid), whatever process group it made."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # ended meanwhile
            continue
        if int(fields[3]) == sid:  # after the state: ppid, pgrp, session
            try:
                os.kill(int(entry.name), signal.SIGKILL)
            except ProcessLookupError:
                pass


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except ProcessLookupError:
        pass


def prepare_home(home: Path, dags: Path | None) -> tuple[Path, str, str]:
    """An AIRFLOW_HOME with the DAG files of `dags` copied in and a known admin password for Airflow 3's simple
    auth manager (it keeps the passwords of existing users). Returns (dags folder, username, password)."""
    home.mkdir(parents=True, exist_ok=True)
    dags_folder = home / "dags"
    dags_folder.mkdir(exist_ok=True)
    if dags is not None:
        for path in dags.glob("*.py"):
            shutil.copy(path, dags_folder / path.name)
    username, password = "admin", "test-" + os.urandom(6).hex()
    (home / "simple_auth_manager_passwords.json.generated").write_text(json.dumps({username: password}))
    return dags_folder, username, password


def airflow_env(python: str, home: Path, dags_folder: Path, username: str, port: int,
                parallelism: int = 4) -> dict[str, str]:
    """The environment of every Airflow process of one deployment: this environment without the tests' own
    AIRFLOW__CORE__UNIT_TEST_MODE, plus its home, DAGs, admin user, API port and short scheduler intervals."""
    env = {
        **os.environ,
        "PATH": str(Path(python).parent) + os.pathsep + os.environ.get("PATH", ""),
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__PARALLELISM": str(parallelism),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__API__PORT": str(port),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    }
    env.pop("AIRFLOW__CORE__UNIT_TEST_MODE", None)
    return env


def start_standalone(home: Path, dags: Path | None, *, env: Mapping[str, str] | None = None,
                     sql_alchemy_conn: str | None = None, parallelism: int = 4,
                     python: str | None = None) -> Standalone:
    """Start `airflow standalone` in `home` (AIRFLOW_HOME) with the DAG files of `dags` copied in, from the
    Airflow of `python` (default: `airflow_python()`)."""
    python = python or airflow_python()
    version = airflow_version(python)
    dags_folder, username, password = prepare_home(home, dags)
    port = free_port()
    full_env = {
        **airflow_env(python, home, dags_folder, username, port, parallelism),
        # Airflow 2.x: the webserver serves /api/v1 (basic auth), the scheduler lists the DAGs folder often
        "AIRFLOW__WEBSERVER__WEB_SERVER_PORT": str(port),
        "AIRFLOW__WEBSERVER__WEB_SERVER_HOST": "127.0.0.1",
        "AIRFLOW__WEBSERVER__WORKERS": "1",
        "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth,airflow.api.auth.backend.session",
        "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
        **(env or {}),
    }
    if sql_alchemy_conn:
        full_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = sql_alchemy_conn
        if sql_alchemy_conn.startswith("postgresql+psycopg://"):  # psycopg 3 is async too (no asyncpg needed)
            full_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = sql_alchemy_conn
    log_path = home / "standalone.log"
    with open(log_path, "ab") as log:
        process = subprocess.Popen([str(Path(python).parent / "airflow"), "standalone"], stdout=log,
                                   stderr=subprocess.STDOUT, env=full_env, cwd=str(home), start_new_session=True)
    standalone = Standalone(home=home, port=port, username=username, password=password, process=process,
                            log_path=log_path, python=python, version=version)
    try:
        standalone.wait_healthy()
        if standalone.api_version == "v1":  # 2.x makes its own admin password at first start
            standalone.password = standalone.wait_for(
                "the admin password", lambda: _read(home / "standalone_admin_password.txt"), 60)
    except BaseException:
        standalone.stop()
        raise
    return standalone


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
