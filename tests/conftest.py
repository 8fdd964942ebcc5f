"""Shared fixtures: a REAL tracker (`python -m runlink server` subprocess) per database backend.

- `tracker`: session-scoped, parametrized over SQLite and PostgreSQL: a `support.tracker.Tracker` with `.url`,
  `.token` (admin), `.home`, `.db_url`, `.post_events(events)`, `.get(path)`, `.make_token(scope)`.
- `tracker_factory(backend=..., db_url=..., open_reads=..., python=...)`: more trackers (each its own
  RUNLINK_HOME; a PostgreSQL one gets a fresh database unless `db_url` is given; `python` runs the server when
  this interpreter cannot). All stopped at session end.
- `pg_url`: a fresh PostgreSQL database for this session (dropped at the end), or a skip with the reason.
- `unique`: a short random string, so tests sharing a session tracker do not see each other's runs.

PostgreSQL is the server at 127.0.0.1:5432 (trust auth, database `test`; user postgres, else root). When no
server answers, PostgreSQL-parametrized tests are skipped and say why; SQLite ones still run.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from support.postgres import BACKENDS, create_database, drop_database
from support.tracker import Tracker, start_tracker

# ------------------------------------------------------------------ PostgreSQL

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
                extra_args: Sequence[str] = (), extra_env: dict[str, str] | None = None,
                python: str | None = None) -> Tracker:
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
                                extra_env=extra_env, python=python)
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
