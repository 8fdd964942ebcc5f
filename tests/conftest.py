"""Shared fixtures: a REAL tracker (`python -m runlink server` subprocess) per database backend.

- `tracker`: session-scoped, parametrized over SQLite and PostgreSQL; has `.url`, `.token` (admin),
  `.home`, `.db_url`, `.post_events(events)`, `.get(path)`, `.make_token(scope)`.
- `tracker_factory(backend=..., db_url=..., open_reads=...)`: more trackers (each its own RUNLINK_HOME;
  a PostgreSQL one gets a fresh database unless `db_url` is given). All stopped at session end.
- `pg_url`: a fresh PostgreSQL database for this session (dropped at the end), or a skip with the reason.
- `unique`: a short random string, so tests sharing a session tracker do not see each other's runs.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database `test`; user postgres, else root). When no
server answers, PostgreSQL-parametrized tests are skipped and say why; SQLite ones still run.
"""

from __future__ import annotations

import gzip as gzip_module
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
PG_HOST = os.environ.get("RUNLINK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RUNLINK_TEST_PG_PORT", "5432"))
START_DEADLINE_S = 60.0
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# ------------------------------------------------------------------ PostgreSQL

_pg_probe: dict[str, Any] = {}


def postgres_admin_url() -> str | None:
    """URL of the `test` database as a user that may create databases, or None (reason in `_pg_probe`)."""
    if "url" in _pg_probe:
        return _pg_probe["url"]
    import psycopg

    errors = []
    for user in ("postgres", "root"):
        url = f"postgresql://{user}@{PG_HOST}:{PG_PORT}/test"
        try:
            with psycopg.connect(url, connect_timeout=3):
                _pg_probe["url"] = url
                return url
        except psycopg.Error as exc:
            errors.append(f"{user}: {str(exc).strip().splitlines()[0] if str(exc).strip() else exc!r}")
    _pg_probe["url"] = None
    _pg_probe["reason"] = f"no PostgreSQL server answers at {PG_HOST}:{PG_PORT} ({'; '.join(errors)})"
    return None


def create_database() -> str:
    """A fresh database `runlink_test_<random>`; returns its SQLAlchemy URL (psycopg 3)."""
    import psycopg

    admin = postgres_admin_url()
    if admin is None:
        pytest.skip(_pg_probe["reason"])
    name = f"runlink_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    import psycopg

    admin = postgres_admin_url()
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


@pytest.fixture(scope="module", params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A migrated tracker database for in-process tests of ingest and queries (hypothesis tries many orders):
    a SQLite file per module, or the session's PostgreSQL database."""
    from runlink.tracker.db import Database, upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'tracker.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    db = Database(url)
    upgrade(db.engine)
    yield db
    db.dispose()


# ------------------------------------------------------------------ the tracker process

@dataclass
class Tracker:
    """A running `runlink server` and helpers to talk to it (admin token by default)."""

    url: str
    token: str
    home: Path
    db_url: str
    backend: str
    process: subprocess.Popen = field(repr=False)
    log_path: Path = field(repr=False)

    def headers(self, token: str | None = "") -> dict[str, str]:
        token = self.token if token == "" else token
        return {"Authorization": f"Bearer {token}"} if token else {}

    def post_events(
        self, events: Sequence[dict[str, Any]], *, token: str | None = "", gzip: bool = False, timeout: float = 60
    ) -> requests.Response:
        """POST a batch; returns the response (not raising), so tests can check error answers."""
        body = json.dumps({"events": list(events)}).encode()
        headers = {"Content-Type": "application/json", **self.headers(token)}
        if gzip:
            body = gzip_module.compress(body)
            headers["Content-Encoding"] = "gzip"
        return requests.post(self.url + "/api/v1/events", data=body, headers=headers, timeout=timeout)

    def post_raw(
        self, body: bytes, headers: dict[str, str] | None = None, *, token: str | None = ""
    ) -> requests.Response:
        """POST bytes as they are (bad JSON, bad gzip, oversized bodies)."""
        merged = {**self.headers(token), **(headers or {})}
        return requests.post(self.url + "/api/v1/events", data=body, headers=merged, timeout=60)

    def get(self, path: str, *, token: str | None = "", **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, headers=self.headers(token), timeout=60)

    def get_json(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, (response.status_code, response.text[:2000])
        return response.json()

    def make_token(self, scope: str) -> str:
        response = requests.post(self.url + "/api/v1/tokens", json={"scope": scope}, headers=self.headers(),
                                 timeout=30)
        assert response.status_code == 201, response.text
        return response.json()["token"]

    def log(self) -> str:
        try:
            return self.log_path.read_text("utf-8", errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=15)


def start_tracker(home: Path, db_url: str, backend: str, *, open_reads: bool = False,
                  extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None) -> Tracker:
    """Start `python -m runlink server` and wait (bounded) until /healthz answers."""
    home.mkdir(parents=True, exist_ok=True)
    log_path = home / "server.log"
    for _ in range(3):  # the port could be taken between free_port() and bind: try another
        port = free_port()
        args = [sys.executable, "-m", "runlink", "server", "--host", "127.0.0.1", "--port", str(port),
                "--home", str(home), "--db", db_url, *extra_args]
        if open_reads:
            args.append("--open")
        env = {**os.environ, "RUNLINK_HOME": str(home), "PYTHONPATH": str(ROOT / "python"), **(extra_env or {})}
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(ROOT))
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_DEADLINE_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)  # polling interval, not synchronisation: the condition is /healthz answering
        else:
            process.kill()
            process.wait(timeout=10)
            text = log_path.read_text("utf-8", errors="replace")
            if "address already in use" in text.lower():
                continue
            raise RuntimeError(f"tracker did not become healthy within {START_DEADLINE_S}s:\n{text[-4000:]}")
        token = (home / "token").read_text("utf-8").strip()
        return Tracker(url=url, token=token, home=home, db_url=db_url, backend=backend, process=process,
                       log_path=log_path)
    raise RuntimeError("could not find a free port for the tracker")


@pytest.fixture(scope="session")
def tracker_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    started: list[Tracker] = []
    databases: list[str] = []

    def factory(backend: str = "sqlite", db_url: str | None = None, open_reads: bool = False,
                extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None) -> Tracker:
        home = tmp_path_factory.mktemp(f"runlink-home-{backend}")
        if db_url is None:
            if backend == "postgresql":
                db_url = create_database()
                databases.append(db_url)
            else:
                db_url = f"sqlite:///{home / 'runlink.db'}"
        elif db_url.startswith("postgresql"):
            backend = "postgresql"
        tracker = start_tracker(home, db_url, backend, open_reads=open_reads, extra_args=extra_args,
                                extra_env=extra_env)
        started.append(tracker)
        return tracker

    yield factory
    for tracker in started:
        tracker.stop()
    for url in databases:
        drop_database(url)


@pytest.fixture(scope="session", params=BACKENDS)
def tracker(request: pytest.FixtureRequest, tracker_factory: Any) -> Tracker:
    """The session's tracker for one backend (tests that use it run on SQLite and on PostgreSQL)."""
    return tracker_factory(backend=request.param)


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:10]
