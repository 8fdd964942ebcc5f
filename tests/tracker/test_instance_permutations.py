"""Property: several Airflow instances sharing a dag_id and a run id, an alias uid (Databand's instance UUID) and
uid-less contexts give the same tree in any arrival order, any batching, and wherever the alias is added.

Real ingest, relink and queries on a real database (SQLite file and PostgreSQL), in-process so that hypothesis can
try many orders; the tables are emptied between examples.
"""

from __future__ import annotations

import copy

import orjson
import pytest
from builders import event, full_run
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from runlink.tracker import airflow_instances as registry
from runlink.tracker import ingest, queries, relink
from runlink.tracker.db import Database
from runlink.tracker.models import metadata

DAG = "multi"
PROD, STAGING, DATABAND = "airflow-prod", "airflow-staging", "5f0c1e2d-databand-instance"
TS = "2026-11-21T00:00:00+00:00"
SHARED_RUN = "scheduled__2026-11-21T00:00:00+00:00"
PROD_ONLY_RUN = "manual__2026-11-22T05:00:00+00:00"


def _instance_run(uid: str) -> list[dict]:
    events = copy.deepcopy(full_run(DAG, uid=uid, stages=2))
    for ev in events:
        if ev.get("spark"):
            ev["spark"]["app_id"] = f"app-{uid}"
    return events


def _events() -> list[dict]:
    task = {"dag_id": DAG, "task_id": "transform", "try_number": "1"}
    return [
        *_instance_run(PROD),
        *_instance_run(STAGING),
        event("task_attempt.start", {"state": "running", "start_date": "2026-11-22T05:00:00Z"}, agent="airflow",
              context={**task, "dag_run_id": PROD_ONLY_RUN, "execution_date": "2026-11-22T05:00:00+00:00",
                       "uid": PROD}, time="2026-11-21T05:00:00Z"),
        # Databand's instance UUID for prod's shared run: joins prod once the alias exists
        event("metric", {"key": "databand_rows", "value": 3}, context={**task, "execution_date": TS, "uid": DATABAND},
              time="2026-11-21T01:00:50Z"),
        # uid-less (an OpenLineage child): only prod has this run -> prod's attempt
        event("metric", {"key": "prod_only", "value": 1}, context={**task, "dag_run_id": PROD_ONLY_RUN},
              time="2026-11-21T05:00:01Z"),
        # uid-less with the run id both instances have -> ambiguous, kept apart
        event("metric", {"key": "which_one", "value": 2}, context={**task, "dag_run_id": SHARED_RUN},
              time="2026-11-21T01:00:51Z"),
    ]


EVENTS = _events()


def _reset(db: Database, home) -> None:
    with db.write() as conn:
        for table in reversed(metadata.sorted_tables):
            if table.name != "tokens":
                conn.execute(text(f'DELETE FROM "{table.name}"'))
        registry.create(conn, home, {"name": "prod", "url": "http://airflow-prod:8080", "uid": PROD,
                                     "auth_kind": "none"})


def _add_alias(db: Database) -> None:
    with db.write() as conn:
        uid = registry.add_alias(conn, "prod", DATABAND)
        relink.relink_alias(conn, DATABAND, uid, True)


def _trees(db: Database, home, batches: list[list[dict]], alias_at: int) -> bytes:
    _reset(db, home)
    for n, batch in enumerate(batches):
        if n == alias_at:
            _add_alias(db)
        with db.write() as conn:
            ingest.store(conn, ingest.prepare(batch))
    if alias_at >= len(batches):
        _add_alias(db)
    with db.read() as conn:
        runs = queries.list_runs(conn, limit=500)["items"]
        trees = [queries.run_tree(conn, run["id"]) for run in runs]
    return orjson.dumps(sorted(trees, key=lambda t: t["id"]), option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


@pytest.fixture(scope="module")
def reference(database, tmp_path_factory) -> bytes:
    return _trees(database, tmp_path_factory.mktemp("home"), [EVENTS], 0)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(EVENTS), cuts=st.lists(st.integers(1, len(EVENTS) - 1), max_size=4),
       alias_at=st.integers(0, 5))
def test_any_order_batching_and_alias_moment_give_the_same_tree(database, reference, tmp_path_factory, order,
                                                                 cuts, alias_at):
    bounds = [0, *sorted(set(cuts)), len(order)]
    batches = [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False) if b > a]
    assert _trees(database, tmp_path_factory.getbasetemp(), batches, alias_at) == reference


def test_reference_tree_has_one_run_per_instance_run_and_keeps_the_ambiguous_one_apart(reference):
    trees = [t for t in orjson.loads(reference) if t["dag_id"] == DAG]
    by_key = {(t["uid"], t["run_id"]): t for t in trees}
    assert set(by_key) == {(PROD, SHARED_RUN), (STAGING, SHARED_RUN), (PROD, PROD_ONLY_RUN), (None, SHARED_RUN)}

    def metrics(tree):
        return sorted(m["key"] for a in tree["task_attempts"] for m in a["metrics"])

    prod = by_key[(PROD, SHARED_RUN)]
    assert metrics(prod) == ["databand_rows", "rows"] and not prod["ambiguous"]
    assert [a["spark_apps"][0]["app_id"] for a in prod["task_attempts"]] == [f"app-{PROD}"]
    assert metrics(by_key[(STAGING, SHARED_RUN)]) == ["rows"]
    assert metrics(by_key[(PROD, PROD_ONLY_RUN)]) == ["prod_only"]
    apart = by_key[(None, SHARED_RUN)]
    assert apart["ambiguous"] and metrics(apart) == ["which_one"]


def test_removing_the_alias_relinks_back(database, tmp_path_factory):
    home = tmp_path_factory.getbasetemp()
    _trees(database, home, [EVENTS], 0)
    with database.write() as conn:
        uid = registry.remove_alias(conn, "prod", DATABAND)
        relink.relink_alias(conn, DATABAND, uid, False)
    with database.read() as conn:
        uids = {r["uid"] for r in queries.list_runs(conn, dag_id=DAG, limit=50)["items"]}
    assert DATABAND in uids
