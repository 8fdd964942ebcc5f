"""`--durability` / RUNLINK_DB_DURABILITY: one meaning on both backends. "normal" (the default) answers once the
write survives a crash of the tracker (SQLite synchronous=NORMAL; PostgreSQL synchronous_commit=off in the write
transactions only); "full" once it is on disk (SQLite synchronous=FULL; PostgreSQL the server's own setting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest

from runlink.tracker.app import SETTINGS_ENV, app_from_env, prepare_database
from runlink.tracker.db import Database, upgrade
from runlink.tracker.settings import TrackerSettings
from support.postgres import create_database, drop_database

_SYNC_LEVELS = {1: "normal", 2: "full"}  # PRAGMA synchronous answers a number


def _sqlite_level(database: Database) -> str:
    with database.write() as conn:
        return _SYNC_LEVELS[conn.exec_driver_sql("PRAGMA synchronous").scalar_one()]


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_sqlite_synchronous_follows_durability(tmp_path: Path, durability: str) -> None:
    database = Database(f"sqlite:///{tmp_path / 'runlink.db'}", durability)
    try:
        assert _sqlite_level(database) == durability
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    url = create_database()
    yield url
    drop_database(url)


def _commit_setting(database: Database, keys: list[str] | None) -> tuple[str, str]:
    """synchronous_commit inside a write transaction, and on the same pooled connection after it."""
    with database.write(keys) as conn:
        inside = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
    with database.read() as conn:
        after = conn.exec_driver_sql("SHOW synchronous_commit").scalar_one()
    return inside, after


@pytest.mark.postgres
@pytest.mark.parametrize(("durability", "inside"), [("normal", "off"), ("full", "on")])
@pytest.mark.parametrize("keys", [["dag:a"], None], ids=["keyed", "exclusive"])
def test_postgres_commits_follow_durability(pg_url: str, durability: str, inside: str, keys: list[str] | None) -> None:
    database = Database(pg_url, durability)
    try:
        upgrade(database.engine)
        # the write's own transaction only: a read afterwards on the (single, LIFO) pooled connection is at the
        # server's setting again
        assert _commit_setting(database, keys) == (inside, "on")
    finally:
        database.dispose()


def test_unknown_level_is_refused_naming_the_levels(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"one of normal, full \(got 'fast'\)"):
        Database(f"sqlite:///{tmp_path / 'runlink.db'}", "fast")


def test_worker_processes_get_the_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--workers N` hands the settings to its workers as JSON: the level must survive the trip."""
    settings = TrackerSettings(home=tmp_path, durability="full")
    prepare_database(settings)
    monkeypatch.setenv(SETTINGS_ENV, json.dumps({**asdict(settings), "home": str(tmp_path)}))
    app = app_from_env()
    try:
        assert app.state.db.durability == "full"
        assert _sqlite_level(app.state.db) == "full"
    finally:
        app.state.db.dispose()


def test_environment_sets_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RUNLINK_DB_DURABILITY", "full")
    assert TrackerSettings(home=tmp_path).durability == "full"
    monkeypatch.delenv("RUNLINK_DB_DURABILITY")
    assert TrackerSettings(home=tmp_path).durability == "normal"


def test_server_refuses_an_unknown_level_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RUNLINK_HOME": str(tmp_path), "RUNLINK_DB_DURABILITY": "fast"}
    done = subprocess.run([sys.executable, "-m", "runlink", "server", "--port", "0"], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "runlink: RUNLINK_DB_DURABILITY must be one of normal, full (got fast)"
    assert not (tmp_path / "runlink.db").exists()  # refused before any database work


def test_server_refuses_an_unknown_flag_value_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "RUNLINK_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "runlink", "server", "--port", "0", "--durability", "fast"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "runlink: --durability must be one of normal, full (got fast)"
