"""Property: any arrival order (and any batching) of a run's events gives the same tree.

Uses the real ingest and query code on a real database (SQLite file and PostgreSQL), in-process so that
hypothesis can try many orders; the tables are emptied between examples.
"""

from __future__ import annotations

import orjson
import pytest
from builders import event, full_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from runlink.tracker import ingest, queries
from runlink.tracker.db import Database
from runlink.tracker.models import metadata

DAG = "perm"


def _events() -> list[dict]:
    evs = full_run(DAG, stages=4)
    base = {"dag_id": DAG, "execution_date": "2026-11-21T00:00:00+00:00", "uid": "prod"}
    evs += [
        # a retry: try 2, and children without try number that must follow the latest attempt
        event("task_attempt.start", {"state": "running", "start_date": "2026-11-21T02:00:00Z"}, agent="airflow",
              context={**base, "task_id": "transform", "try_number": "2"}, time="2026-11-21T02:00:00Z"),
        event("metric", {"key": "no_try", "value": 1.5}, context={**base, "task_id": "transform"},
              time="2026-11-21T02:00:01Z"),
        event("metric", {"key": "ts_nodash", "value": "x"}, time="2026-11-21T02:00:02Z",
              context={"dag_id": DAG, "execution_date": "20261121T000000", "task_id": "transform",
                       "try_number": "2"}),
        # the same stage reported twice (re-send with another id): the later report wins in any order
        event("spark_stage.completed", {"stage_id": 0, "attempt_id": 0, "status": "failed",
                                        "metrics": {"executor_run_time_ms": 999}},
              spark={"app_id": f"app-{DAG}"}, agent="jvm", time="2026-11-21T01:00:59Z"),
        # a Spark app without Airflow context
        event("spark_app.start", {"name": "local"}, spark={"app_id": "local-1"}, agent="jvm"),
        event("spark_job.end", {"job_id": 3, "result": "failed"}, spark={"app_id": "local-1"}, agent="jvm"),
    ]
    return evs


EVENTS = _events()


def _reset(db: Database) -> None:
    with db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "tokens":
                conn.execute(text(f'DELETE FROM "{table.name}"'))


def _trees(db: Database, batches: list[list[dict]]) -> bytes:
    _reset(db)
    for batch in batches:
        prepared = ingest.prepare(batch)
        with db.write() as conn:
            ingest.store(conn, prepared)
    with db.read() as conn:
        runs = queries.list_runs(conn, limit=500)["items"]
        trees = [queries.run_tree(conn, run["id"]) for run in runs]
    return orjson.dumps(trees, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


@pytest.fixture(scope="module")
def reference(database) -> bytes:
    return _trees(database, [EVENTS])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(EVENTS), cuts=st.lists(st.integers(1, len(EVENTS) - 1), max_size=4))
def test_any_order_and_batching_gives_the_same_tree(database, reference, order, cuts):
    bounds = [0, *sorted(set(cuts)), len(order)]
    batches = [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    assert _trees(database, batches) == reference


def test_reference_tree_is_the_expected_one(database, reference):
    trees = orjson.loads(reference)
    assert sorted(t["dag_id"] for t in trees) == ["perm", "spark:local"]
    tree = next(t for t in trees if t["dag_id"] == DAG)
    attempts = {a["try_number"]: a for a in tree["task_attempts"]}
    assert set(attempts) == {1, 2}
    assert sorted(m["key"] for m in attempts[2]["metrics"]) == ["no_try", "rows", "ts_nodash"]  # no try: latest
    stage0 = attempts[1]["spark_apps"][0]["stages"][0]
    assert stage0["status"] == "failed" and stage0["metrics"]["executor_run_time_ms"] == 999


def test_replaying_everything_in_reverse_changes_nothing(database, reference):
    _trees(database, [EVENTS])
    for batch in (EVENTS[::-1],):
        prepared = ingest.prepare(batch)
        with database.write() as conn:
            assert ingest.store(conn, prepared) == (0, len(EVENTS))
    with database.read() as conn:
        runs = queries.list_runs(conn, limit=500)["items"]
        trees = [queries.run_tree(conn, run["id"]) for run in runs]
    assert orjson.dumps(trees, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2) == reference
