"""The after-ingest retry of waiting OpenLineage children takes the exclusive write lock only when a child waits on
one of the batch's DAGs. It used to take it after every batch, so on PostgreSQL each batch waited for every other
worker's and replica's writes to finish, and held up all of them in turn."""

from __future__ import annotations

import uuid
from pathlib import Path
from types import SimpleNamespace

import ol_events as ol
import pytest

from runlink.protocol.events import make_event
from runlink.tracker import ingest
from runlink.tracker.db import Database, upgrade
from runlink.tracker.openlineage import receive
from runlink.tracker.routes.lineage import WaitingLinker, link_waiting
from runlink.tracker.settings import TrackerSettings
from support.postgres import BACKENDS, create_database, drop_database
from support.recording_db import RecordingDatabase


@pytest.fixture(params=BACKENDS)
def db(request, tmp_path: Path):
    url = create_database() if request.param == "postgresql" else f"sqlite:///{tmp_path / 'runlink.db'}"
    database = Database(url)
    upgrade(database.engine)
    yield database
    database.dispose()
    if request.param == "postgresql":
        drop_database(url)


def _state(db: Database, tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(db=RecordingDatabase(db), settings=TrackerSettings(home=tmp_path), ingest_hooks=())


def test_nothing_waiting_takes_no_write(db, tmp_path):
    state = _state(db, tmp_path)
    assert link_waiting(state, {"etl_daily"}) == 0
    assert state.db.keys == []


def test_a_child_waiting_on_the_batch_dag_is_retried_under_the_exclusive_lock(db, tmp_path):
    child = ol.spark_app("START", "2026-04-02T06:30:00Z", app_id="app-1", app_name="etl", ol_run_id=str(uuid.uuid4()),
                         parent=("default", "etl_daily.load", str(uuid.uuid4())))
    with db.write() as conn:
        _events, _origin, translator = receive.translate_all(conn, [child])
    assert translator.pending == 1
    state = _state(db, tmp_path)
    assert link_waiting(state, {"other_dag"}) == 0
    assert state.db.keys == []  # waiting, but on another DAG
    assert link_waiting(state, {"etl_daily"}) == 0  # retried (its parent is still unknown)
    assert state.db.keys == [None]


def _stored(db: Database, dag_id: str):  # noqa: ANN202
    """A batch of one attempt of `dag_id`, stored as /api/v1/events does; its Prepared."""
    context = {"dag_id": dag_id, "task_id": "load", "try_number": "1", "execution_date": "2026-04-02T06:30:00+00:00"}
    prepared = ingest.prepare([make_event("task_attempt.start", {"state": "running"}, agent="airflow",
                                          context=context)])
    with db.write() as conn:
        ingest.store(conn, prepared)
    return prepared


def test_a_batch_stored_while_nothing_waits_spares_the_linker_its_read(db, tmp_path):
    """The batch's own write transaction saw no waiting child (no OpenLineage write overlaps it: they hold the
    exclusive lock), so the after-commit hook reads nothing; once a child waits, it looks again."""
    state = _state(db, tmp_path)
    linker = WaitingLinker(state)
    quiet = _stored(db, "etl_daily")
    assert quiet.lineage_waiting is False
    linker.after_ingest(quiet)
    assert (state.db.reads, state.db.keys) == (0, [])

    child = ol.spark_app("START", "2026-04-02T06:30:00Z", app_id="app-1", app_name="etl", ol_run_id=str(uuid.uuid4()),
                         parent=("default", "etl_daily.load", str(uuid.uuid4())))
    with db.write() as conn:
        receive.translate_all(conn, [child])
    busy = _stored(db, "etl_daily")
    assert busy.lineage_waiting is True
    linker.after_ingest(busy)
    assert state.db.reads == 1 and state.db.keys == [None]  # found it waiting on this DAG, retried it
