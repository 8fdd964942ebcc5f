"""Shared fixtures: a REAL tracker (`python -m runlink server` subprocess) per database backend.

- `tracker`: session-scoped, parametrized over SQLite and PostgreSQL: a `support.tracker.Tracker` with `.url`,
  `.token` (admin), `.home`, `.db_url`, `.post_events(events)`, `.get(path)`, `.make_token(scope)`.
- `tracker_factory(backend=..., db_url=..., open_reads=...)`: more trackers (each its own RUNLINK_HOME;
  a PostgreSQL one gets a fresh database unless `db_url` is given). All stopped at session end.
- `pg_url`: a fresh PostgreSQL database for this session (dropped at the end), or a skip with the reason.
- `unique`: a short random string, so tests sharing a session tracker do not see each other's runs.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database `test`; user postgres, else root). When no
server answers, PostgreSQL-parametrized tests are skipped and say why; SQLite ones still run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from support.tracker import Tracker, start_tracker

PG_HOST = os.environ.get("RUNLINK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RUNLINK_TEST_PG_PORT", "5432"))
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


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
