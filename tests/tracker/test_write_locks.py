"""The PostgreSQL write locks between processes' writers: ingest batches of different DAGs, the alert worker and
token bookkeeping never wait for each other; an exclusive write (a rule edit, a token change) waits for all."""

from __future__ import annotations

import threading

import pytest

from runlink.tracker.alerts import engine
from runlink.tracker.alerts.worker import AlertWorker
from runlink.tracker.auth import TokenCache
from runlink.tracker.db import ALERTS_KEY, Database
from support.postgres import migrated_database
from support.recording_db import RecordingDatabase
from support.waiting import wait_for

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def db():
    with migrated_database() as database:
        yield database


def _hold(db: Database, keys, entered: threading.Event, release: threading.Event) -> threading.Thread:
    def run() -> None:
        with db.write(keys) as conn:
            conn.exec_driver_sql("SELECT 1")
            entered.set()
            release.wait(30)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert entered.wait(10)
    return thread


def _writes_within(db: Database, keys, seconds: float) -> bool:
    done = threading.Event()

    def run() -> None:
        with db.write(keys) as conn:
            conn.exec_driver_sql("SELECT 1")
        done.set()

    threading.Thread(target=run, daemon=True).start()
    return done.wait(seconds)


@pytest.mark.parametrize("held", [(ALERTS_KEY,), (), ("dag:other",)], ids=["alert-worker", "bookkeeping", "dag"])
def test_ingest_does_not_wait_for_a_keyed_write(db, held):
    entered, release = threading.Event(), threading.Event()
    holder = _hold(db, held, entered, release)
    try:
        assert _writes_within(db, ["dag:mine", "app:mine"], 10)
    finally:
        release.set()
        holder.join(10)


def test_an_exclusive_write_waits_for_keyed_writes_and_then_runs(db):
    entered, release = threading.Event(), threading.Event()
    holder = _hold(db, (ALERTS_KEY,), entered, release)
    done = threading.Event()

    def exclusive() -> None:
        with db.write() as conn:
            conn.exec_driver_sql("SELECT 1")
        done.set()

    threading.Thread(target=exclusive, daemon=True).start()
    try:
        with db.engine.connect() as conn:  # the exclusive writer is queued on the write lock, not done
            wait_for(lambda: conn.exec_driver_sql(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").scalar_one() >= 1,
                "the exclusive write to queue", 10)
        assert not done.is_set()
    finally:
        release.set()
        holder.join(10)
    assert done.wait(10)


def test_background_bookkeeping_never_takes_the_exclusive_lock(db):
    recording = RecordingDatabase(db)
    worker = AlertWorker(recording)
    worker.send_due()
    worker._apply([engine.Outcome(rule={"id": 999_999}, subject="dag:gone", firing=True)])  # a rule since deleted
    cache = TokenCache(recording)
    cache._used.add("0" * 64)
    cache.flush_last_used()
    assert recording.keys and None not in recording.keys, recording.keys
