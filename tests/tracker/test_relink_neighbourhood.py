"""A new context relinks only its neighbourhood (same day, same dag_run_id), and the links that gives equal
linking.link_dag over the dag's whole history, whatever was ingested before."""

from __future__ import annotations

import random

import pytest
from builders import event

from runlink.tracker import ingest, linking, relink
from runlink.tracker.db import Database, upgrade

DAG = "hood"


def _ctx(day: int, **extra: str) -> dict:
    return {"dag_id": DAG, "uid": "prod", **extra} | ({"execution_date": f"2026-10-{day:02d}T00:00:00+00:00"}
                                                      if "execution_date" not in extra else {})


def _store(db: Database, batch: list[dict]) -> None:
    prepared = ingest.prepare(batch)
    with db.write() as conn:
        ingest.store(conn, prepared)


@pytest.fixture
def db(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'hood.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


def test_new_contexts_relink_their_neighbourhood_only_and_match_a_full_relink(db: Database) -> None:
    rng = random.Random(5)
    history = []
    for day in range(1, 29):
        for task in ("a", "b", "c"):
            history.append(event("task_attempt.start", {"state": "running"}, agent="airflow",
                                 context=_ctx(day, dag_run_id=f"scheduled__2026-10-{day:02d}", task_id=task,
                                              try_number="1")))
    rng.shuffle(history)
    _store(db, history)

    later = [
        # a retry on day 3, a date-only metric on day 5 (joins that day's run), a task on a new day 29
        event("task_attempt.start", {"state": "running"}, agent="airflow",
              context=_ctx(3, dag_run_id="scheduled__2026-10-03", task_id="b", try_number="2")),
        event("metric", {"key": "rows", "value": 7}, context={"dag_id": DAG, "execution_date": "2026-10-05",
                                                              "task_id": "a"}),
        event("task_attempt.start", {"state": "running"}, agent="airflow",
              context=_ctx(29, dag_run_id="scheduled__2026-10-29", task_id="a", try_number="1")),
    ]
    read_rows: list[int] = []
    original = relink._neighbourhood

    def spy(*args):  # noqa: ANN002
        rows = original(*args)
        read_rows.append(len(rows))
        return rows

    relink._neighbourhood = spy
    try:
        _store(db, later)
    finally:
        relink._neighbourhood = original
    # days 3, 5 and 29 only (3 + 3 contexts, the metric's, the retry's, day 29's): not the 84 of the history
    assert read_rows and max(read_rows) <= 10, read_rows

    with db.read() as conn:
        rows = conn.exec_driver_sql("SELECT id, uid, dag_id, dag_run_id, logical_date, logical_day, date_only, "
                                    "task_id, try_number, map_index, run_pk, attempt_pk, ambiguous FROM contexts "
                                    "WHERE dag_id = ?", (DAG,)).all()
    stored = {relink._ctx_of(r): (r.run_pk, r.attempt_pk, bool(r.ambiguous)) for r in rows}
    full = linking.link_dag(DAG, stored, {"prod"})
    assert len(stored) == 84 + 3
    for ctx, link in full.items():
        assert stored[ctx] == (link.run.id, link.attempt.id if link.attempt else None, link.ambiguous), ctx
    metric_ctx = next(c for c in stored if c.date_only)
    assert full[metric_ctx].run.run_id == "scheduled__2026-10-05"


def test_a_new_instance_uid_relinks_the_whole_dag(db: Database) -> None:
    """Rule 1: a context without uid takes the dag's only uid; once a second uid shows up (on another day, outside
    any neighbourhood) it must not be guessed any more, so that context is relinked too."""
    no_uid = {"dag_id": DAG, "execution_date": "2026-10-01T00:00:00+00:00", "task_id": "a", "try_number": "1"}
    _store(db, [event("metric", {"key": "m", "value": 1}, context=no_uid),
                event("task_attempt.start", {"state": "running"}, agent="airflow", context=_ctx(2, task_id="a"))])
    _store(db, [event("task_attempt.start", {"state": "running"}, agent="airflow",
                      context={**_ctx(20, task_id="a"), "uid": "staging"})])
    with db.read() as conn:
        rows = conn.exec_driver_sql("SELECT id, uid, dag_id, dag_run_id, logical_date, logical_day, date_only, "
                                    "task_id, try_number, map_index, run_pk, attempt_pk, ambiguous FROM contexts "
                                    "WHERE dag_id = ?", (DAG,)).all()
        uids = {r[0] for r in conn.exec_driver_sql("SELECT uid FROM dag_runs WHERE dag_id = ?", (DAG,))}
    stored = {relink._ctx_of(r): (r.run_pk, r.attempt_pk, bool(r.ambiguous)) for r in rows}
    full = linking.link_dag(DAG, stored, ())
    for ctx, link in full.items():
        assert stored[ctx] == (link.run.id, link.attempt.id if link.attempt else None, link.ambiguous), ctx
    assert uids == {None, "prod", "staging"}, uids
