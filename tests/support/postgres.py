"""The PostgreSQL server the tests use (127.0.0.1:5432, trust auth, database `test`; user postgres, else root):
a fresh database per need, or a skip that says why no server answered."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

PG_HOST = os.environ.get("RUNLINK_TEST_PG_HOST", "127.0.0.1")
PG_PORT = int(os.environ.get("RUNLINK_TEST_PG_PORT", "5432"))

#: the tracker's database backends, for parametrizing: PostgreSQL ones are marked (and skip without a server)
BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]

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


@contextmanager
def migrated_database() -> Iterator[Any]:
    """A fresh PostgreSQL database at the schema's head, as a tracker `Database`; dropped afterwards."""
    from runlink.tracker.db import Database, upgrade

    url = create_database()
    database = Database(url)
    upgrade(database.engine)
    try:
        yield database
    finally:
        database.dispose()
        drop_database(url)
