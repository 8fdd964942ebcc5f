"""The alert evaluator walks an ingested batch only when an alert rule is enabled. The batch says whether one was
(read in its own write transaction, which no rule edit overlaps), so the evaluator reads the rules only for a
batch that does not say: it used to read them after every batch, a round trip per batch on PostgreSQL."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from runlink.protocol import make_event
from runlink.tracker import ingest
from runlink.tracker.alerts.worker import AlertWorker
from runlink.tracker.db import Database, upgrade
from support.recording_db import RecordingDatabase


def _stored(database: Database) -> ingest.Prepared:
    context = {"dag_id": "etl", "task_id": "load", "try_number": "1", "execution_date": "2026-04-02T06:30:00+00:00"}
    prepared = ingest.prepare([make_event("task_attempt.end", {"state": "failed"}, agent="airflow",
                                          context=context)])
    with database.write() as conn:
        ingest.store(conn, prepared)
    return prepared


def test_a_batch_says_whether_to_walk_it(tmp_path: Path) -> None:
    database = Database(f"sqlite:///{tmp_path / 'runlink.db'}")
    upgrade(database.engine)
    recording = RecordingDatabase(database)
    worker = AlertWorker(recording)
    try:
        quiet = _stored(database)
        assert quiet.alert_rules_enabled is False  # no rule yet
        assert worker._drain(quiet)[0] == set() and recording.reads == 0

        said = dataclasses.replace(quiet, alert_rules_enabled=True)
        assert worker._drain(said)[0] == set(quiet.context_pks) and recording.reads == 0

        unsaid = dataclasses.replace(quiet, alert_rules_enabled=None)
        worker.notices.put_nowait(unsaid)
        assert worker._drain(unsaid)[0] == set()  # the rules read says none is enabled
        assert recording.reads == 1  # once for the two batches of the drain
    finally:
        database.dispose()
