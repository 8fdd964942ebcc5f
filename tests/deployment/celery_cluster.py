"""Airflow 3 as a multi-process CeleryExecutor deployment: Debian's `redis-server` as the broker, a PostgreSQL
metadata database (the Celery result backend too), and `airflow api-server`, `scheduler`, `dag-processor` and
`celery worker` as separate processes sharing one AIRFLOW_HOME and configuration. Each process has its own
process group and log file and is stopped by killing its group. Readiness is polled with deadlines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runlink.tracker.process import free_port
from support.airflow_standalone import Standalone, airflow_env, airflow_version, prepare_home, stop_groups
from support.waiting import wait_for

REDIS_DEADLINE_S = 30.0
STOP_GRACE_S = 15.0
COMPONENTS = ("api-server", "scheduler", "dag-processor", "celery worker")


@dataclass
class Redis:
    port: int
    process: subprocess.Popen = field(repr=False)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        stop_groups([self.process], STOP_GRACE_S)


def start_redis(home: Path) -> Redis:
    """`redis-server` on a free port, no persistence; ready when it answers PING."""
    import redis

    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (Debian package redis-server)")
    port = free_port()
    log = open(home / "redis.log", "ab")  # noqa: SIM115 - the server's lifetime, closed with the process group
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                "no", "--dir", str(home)], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    server = Redis(port, process)

    def answers_ping() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"redis-server exited: {(home / 'redis.log').read_text()[-2000:]}")
        return redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping()

    try:
        wait_for(answers_ping, "redis-server answering PING", REDIS_DEADLINE_S, interval_s=0.1,
                 tolerate=(redis.RedisError,))
    except BaseException:
        server.stop()
        raise
    return server


@dataclass
class CeleryAirflow(Standalone):
    """The REST API helpers of `Standalone` (its `process` is the API server) over every component."""

    components: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)
    redis: Redis | None = field(default=None, repr=False)

    def log(self) -> str:
        parts = []
        for name in self.components:
            path = self.home / f"{name.replace(' ', '-')}.log"
            try:
                text = path.read_text("utf-8", errors="replace")
            except OSError:
                text = ""
            parts.append(f"--- {name} ---\n{text[-1500:]}")
        return "\n".join(parts)

    def wait_for(self, what: str, check: Callable[[], Any], deadline_s: float) -> Any:
        def all_alive_then_check() -> Any:
            dead = [name for name, p in self.components.items() if p.poll() is not None]
            if dead:
                raise RuntimeError(f"airflow {dead} exited while waiting for {what}:\n{self.log()}")
            return check()

        return super().wait_for(what, all_alive_then_check, deadline_s)

    def stop(self) -> None:
        """Every component's group gets SIGTERM at once, then SIGKILL after a shared grace period."""
        stop_groups(list(self.components.values()), STOP_GRACE_S)
        if self.redis is not None:
            self.redis.stop()


def start_celery_airflow(home: Path, dags: Path, metadata_url: str, python: str, *,
                         env: Mapping[str, str] | None = None) -> CeleryAirflow:
    """Migrate the metadata database, then start each component in its own process group (Airflow 3 only)."""
    version = airflow_version(python)
    dags_folder, username, password = prepare_home(home, dags)
    redis_server = start_redis(home)
    port = free_port()
    bin_dir = str(Path(python).parent)
    full_env = {
        **airflow_env(python, home, dags_folder, username, port),
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata_url,
        "AIRFLOW__CELERY__BROKER_URL": redis_server.url,
        "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata_url,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        # one secret for every process: the API server signs the task tokens the worker's tasks present
        "AIRFLOW__API_AUTH__JWT_SECRET": os.urandom(16).hex(),
        "AIRFLOW__API__SECRET_KEY": os.urandom(16).hex(),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
        **(env or {}),
    }
    try:
        migrate = subprocess.run([bin_dir + "/airflow", "db", "migrate"], capture_output=True, text=True,
                                 env=full_env, cwd=str(home), timeout=600)
        assert migrate.returncode == 0, migrate.stdout[-3000:] + migrate.stderr[-3000:]
        components: dict[str, subprocess.Popen] = {}
        for name in COMPONENTS:
            args = [bin_dir + "/airflow", *name.split()]
            if name == "celery worker":
                args += ["--concurrency", "2"]
            with open(home / f"{name.replace(' ', '-')}.log", "ab") as log:
                components[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=full_env,
                                                    cwd=str(home), start_new_session=True)
    except BaseException:
        redis_server.stop()
        raise
    cluster = CeleryAirflow(home=home, port=port, username=username, password=password,
                            process=components["api-server"], log_path=home / "api-server.log", python=python,
                            version=version, components=components, redis=redis_server)
    try:
        cluster.wait_healthy()
    except BaseException:
        cluster.stop()
        raise
    return cluster
