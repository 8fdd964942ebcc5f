"""Retention on a real tracker's database (SQLite and PostgreSQL): a history of old and new runs stored through
the real ingest (POST /api/v1/events), then old runs deleted with everything under them while ingest goes on.
Asserts: nothing of an old run is left and no row anywhere points at a deleted one, new runs are unchanged, the
dry run counted exactly what was deleted, and batches posted during retention were all stored."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from builders import event, full_run, stage
from sqlalchemy import text

from runlink.tracker.db import Database
from runlink.tracker.ingest.audit import unpack
from runlink.tracker.retention import TABLES, _event_refs, apply_retention, reclaim_space, retention_lease
from support.postgres import BACKENDS
from support.tracker import ROOT
from support.waiting import wait_for

NOW = datetime.now(timezone.utc)
PYTHON = ROOT / "python"
OLD_DAYS = (90, 60, 45)
NEW_DAYS = (3, 1)


def _run(dag_id: str, days_ago: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """One run of `dag_id`, `days_ago` days ago: (its Airflow events, its Spark events) as two batches, the way
    the Airflow and the JVM agents send them. Its Spark app is its own; its datasets are shared by every run,
    plus one of its own."""
    day = (NOW - timedelta(days=days_ago)).strftime("%Y-%m-%d")
    ts = f"{day}T00:00:00+00:00"
    events = full_run(dag_id, ts=ts, run_id=f"scheduled__{ts}", stages=4)
    app = f"app-{dag_id}-{days_ago}"
    for e in events:
        if e.get("spark"):
            e["spark"]["app_id"] = app
    task = {"dag_id": dag_id, "execution_date": ts, "dag_run_id": f"scheduled__{ts}", "uid": "prod",
            "task_id": "transform", "try_number": "1"}
    events.append(event("dataset", {"operation": "write", "path": f"/data/{dag_id}/{day}.csv", "rows": 1},
                        context=task))
    events.append(event("metric", {"key": "spark_rows", "value": 3}, spark={"app_id": app, "attempt_id": None}))
    events.append(event("sql_statement", {"statement": f"INSERT INTO t_{days_ago} SELECT 1", "success": True,
                                          "engine": "postgres", "rows": 1}, context=task))
    events.append(event("span", {"span_id": uuid.uuid4().hex[:16], "name": "load", "duration_ms": 5.0,
                                 "state": "success"}, context=task))
    spark = [e for e in events if e["type"].startswith(("spark_stage", "spark_job", "spark_executor"))]
    return [e for e in events if e not in spark], spark


def _shared_app(old_days: int, new_days: int) -> list[dict[str, Any]]:
    """A shared Spark application started by an old run's task, doing work (a job and a stage each) for that task
    and for a new run's task (`work_context`, migration 0011)."""
    def task(days: int) -> dict[str, Any]:
        ts = (NOW - timedelta(days=days)).strftime("%Y-%m-%dT00:00:00+00:00")
        return {"dag_id": "etl_orders", "execution_date": ts, "dag_run_id": f"scheduled__{ts}", "uid": "prod",
                "task_id": "transform", "try_number": "1"}

    owner, app = task(old_days), {"app_id": "shared-app", "attempt_id": None}
    events = [event("spark_app.start", {"name": "shared", "start_time": "2026-11-21T01:00:00Z"}, context=owner,
                    spark=app, agent="jvm")]
    for n, days in enumerate((old_days, new_days)):
        for e in (event("spark_job.start", {"job_id": 100 + n, "stage_ids": [100 + n]}, context=owner, spark=app,
                        agent="jvm"), stage(app, 100 + n, context=owner)):
            e["work_context"] = task(days)
            events.append(e)
    return events


def _without_owner(tree: dict[str, Any]) -> dict[str, Any]:
    """A run tree less which context owns each Spark app (a shared app's owner moves when its owner is deleted)."""
    for attempt in tree["task_attempts"]:
        for app in attempt.get("spark_apps", ()):
            app.pop("context_id", None)
            app.pop("shared", None)
    return tree


def _counts(db: Database) -> dict[str, int]:
    with db.read() as conn:
        return {t: conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in TABLES}


#: (what, SQL counting rows that point at something missing)
ORPHANS = [
    ("attempt without run", "SELECT COUNT(*) FROM task_attempts WHERE run_pk NOT IN (SELECT id FROM dag_runs)"),
    ("context of a missing run", "SELECT COUNT(*) FROM contexts WHERE run_pk IS NOT NULL "
                                 "AND run_pk NOT IN (SELECT id FROM dag_runs)"),
    ("context of a missing attempt", "SELECT COUNT(*) FROM contexts WHERE attempt_pk IS NOT NULL "
                                     "AND attempt_pk NOT IN (SELECT id FROM task_attempts)"),
    *((f"{t} of a missing context", f"SELECT COUNT(*) FROM {t} WHERE context_id IS NOT NULL "
                                    "AND context_id NOT IN (SELECT id FROM contexts)")
      for t in ("state_events", "spark_apps", "dataset_ops", "metrics", "log_chunks", "agent_health", "sql_queries",
                "openlineage_runs", "sql_statements", "spans")),
    *((f"{t} of a missing app", f"SELECT COUNT(*) FROM {t} WHERE spark_app_pk IS NOT NULL "
                                "AND spark_app_pk NOT IN (SELECT id FROM spark_apps)")
      for t in ("spark_jobs", "spark_stages", "spark_executors", "sql_queries", "dataset_ops", "metrics",
                "log_chunks", "agent_health")),
    *((f"{t} of a missing context", f"SELECT COUNT(*) FROM {t} WHERE context_id IS NOT NULL "
                                    "AND context_id NOT IN (SELECT id FROM contexts)")
      for t in ("spark_jobs", "spark_stages", "spark_app_contexts")),
    ("user of a missing app", "SELECT COUNT(*) FROM spark_app_contexts WHERE spark_app_pk NOT IN "
                              "(SELECT id FROM spark_apps)"),
    ("op of a missing query", "SELECT COUNT(*) FROM dataset_ops WHERE sql_query_pk IS NOT NULL "
                              "AND sql_query_pk NOT IN (SELECT id FROM sql_queries)"),
    ("dataset without ops", "SELECT COUNT(*) FROM datasets WHERE id NOT IN (SELECT dataset_pk FROM dataset_ops)"),
    ("OpenLineage dataset of a missing run", "SELECT COUNT(*) FROM openlineage_datasets "
                                            "WHERE run_id NOT IN (SELECT run_id FROM openlineage_runs)"),
    ("OpenLineage child of a missing run", "SELECT COUNT(*) FROM openlineage_runs WHERE parent_run_id IS NOT NULL "
                                          "AND parent_run_id NOT IN (SELECT run_id FROM openlineage_runs)"),
    ("notification of a missing alert", "SELECT COUNT(*) FROM alert_notifications "
                                        "WHERE alert_id NOT IN (SELECT id FROM alerts)"),
    ("batch without events", "SELECT COUNT(*) FROM event_batches WHERE id NOT IN "
                             "(SELECT batch_id FROM events WHERE batch_id IS NOT NULL)"),
]


def _orphaned_audit(db: Database) -> list[str]:
    """Stored events whose context and Spark app are both gone (their audit copy outlived their run)."""
    with db.read() as conn:
        contexts = set(conn.execute(text("SELECT id FROM contexts")).scalars())
        apps = set(conn.execute(text("SELECT id FROM spark_apps")).scalars())
        bodies = dict(conn.execute(text("SELECT id, body FROM event_batches")).all())
        rows = conn.execute(text("SELECT id, batch_id, position FROM events")).all()
    decoded = {batch: unpack(bytes(body)) for batch, body in bodies.items()}
    orphans = []
    for event_id, batch, position in rows:
        stored = decoded[batch][position]
        assert stored is not None and stored["id"] == event_id, (event_id, stored)
        context_pk, app_pk = _event_refs(stored)
        if (context_pk or app_pk) and context_pk not in contexts and app_pk not in apps:
            orphans.append(event_id)
    return orphans


def _seed_side_rows(db: Database, old_attempt: str, new_attempt: str, old_context: str) -> None:
    """Rows ingest of runlink events does not make: alerts about attempts (ref and links as the engine writes
    them), their notifications, and an OpenLineage run under an old context with a child, a dataset and an event
    waiting on it."""
    now = NOW.strftime("%Y-%m-%dT%H:%M:%S.000000Z")
    with db.write() as conn:
        for n, attempt in enumerate((old_attempt, new_attempt)):
            alert = str(uuid.uuid4())
            conn.execute(text("INSERT INTO alerts (id, rule_id, subject, state, title, ref, opened_at, last_seen_at) "
                              "VALUES (:id, 'rule', :subject, 'resolved', 't', :ref, :now, :now)"),
                         {"id": alert, "subject": f"task|{n}", "ref": attempt, "now": now})
            conn.execute(text("INSERT INTO alert_notifications (id, alert_id, event, channel, target, payload, status, "
                              "attempts, next_attempt_at, created_at) VALUES (:id, :alert, 'opened', 'webhook', "
                              "'http://x', '{}', 'sent', 1, :now, :now)"),
                         {"id": str(uuid.uuid4()), "alert": alert, "now": now})
        parent, child = uuid.uuid4().hex, uuid.uuid4().hex
        conn.execute(text("INSERT INTO openlineage_runs (run_id, kind, context_id, updated_at) "
                          "VALUES (:id, 'task', :ctx, :now)"), {"id": parent, "ctx": old_context, "now": now})
        conn.execute(text("INSERT INTO openlineage_runs (run_id, kind, parent_run_id, updated_at) "
                          "VALUES (:id, 'child', :parent, :now)"), {"id": child, "parent": parent, "now": now})
        conn.execute(text("INSERT INTO openlineage_datasets (op_id, run_id, direction, facts, merged) "
                          "VALUES (:op, :run, 'output', '{}', '{}')"), {"op": uuid.uuid4().hex, "run": child})
        conn.execute(text("INSERT INTO openlineage_pending (id, waiting_on, raw, received_at, status) "
                          "VALUES (:id, :run, '{}', :now, 'pending')"), {"id": uuid.uuid4().hex, "run": child,
                                                                          "now": now})


@pytest.fixture(params=BACKENDS)
def fresh(request: pytest.FixtureRequest, tracker_factory: Any) -> Any:
    return tracker_factory(backend=request.param)


def test_retention_deletes_old_runs_and_everything_under_them(fresh: Any) -> None:
    tracker = fresh
    dags = ("etl_orders", "etl_users", "ml_train")
    for dag_id in dags:
        for days in (*OLD_DAYS, *NEW_DAYS):
            for batch in _run(dag_id, days):
                answer = tracker.post_events(batch)
                assert answer.status_code == 202, answer.text
    answer = tracker.post_events(_shared_app(OLD_DAYS[0], NEW_DAYS[0]))
    assert answer.status_code == 202, answer.text
    db = Database(tracker.db_url)
    try:
        runs = tracker.get_json("/api/v1/dag-runs", limit=100)["items"]
        cutoff = (NOW - timedelta(days=30)).strftime("%Y-%m-%d")
        old = [r for r in runs if r["logical_date"][:10] < cutoff]
        new = [r for r in runs if r not in old]
        assert len(old) == len(dags) * len(OLD_DAYS) and len(new) == len(dags) * len(NEW_DAYS)
        old_tree = tracker.get_json(f"/api/v1/dag-runs/{old[0]['id']}")
        new_trees = {r["id"]: tracker.get_json(f"/api/v1/dag-runs/{r['id']}") for r in new}
        new_attempt = next(iter(new_trees.values()))["task_attempts"][0]["id"]
        with db.read() as conn:
            old_context = conn.execute(text("SELECT id FROM contexts WHERE attempt_pk = :a"),
                                       {"a": old_tree["task_attempts"][0]["id"]}).scalars().first()
        _seed_side_rows(db, old_tree["task_attempts"][0]["id"], new_attempt, old_context)

        # keep 60 days of the etl DAGs only first: a glob leaves other DAGs' runs alone
        glob_pass = apply_retention(db, 50, "etl_*", audit_all=True)
        assert glob_pass.deleted["dag_runs"] == 2 * 2  # etl_* at 90 and 60 days
        before = _counts(db)
        dry = apply_retention(db, 30, dry_run=True, runs_per_transaction=2, audit_all=True)
        assert _counts(db) == before  # a dry run deletes nothing

        posted: list[int] = []
        stop = threading.Event()

        def ingest_meanwhile() -> None:  # new runs keep arriving while retention deletes
            n = 0
            while not stop.is_set() or n < 3:
                for batch in _run(f"live_{n}", 0):
                    posted.append(tracker.post_events(batch).status_code)
                n += 1

        writer = threading.Thread(target=ingest_meanwhile)
        writer.start()
        try:
            real = apply_retention(db, 30, runs_per_transaction=2, audit_all=True)
        finally:
            stop.set()
            writer.join(timeout=120)
        assert set(posted) == {202} and len(posted) >= 6

        assert real.deleted == dry.deleted
        assert real.deleted["dag_runs"] == len(old) - glob_pass.deleted["dag_runs"]
        for table in ("task_attempts", "contexts", "spark_apps", "spark_stages", "spark_jobs", "sql_queries",
                      "sql_statements", "spans", "spark_app_contexts",
                      "metrics", "log_chunks", "state_events", "events", "event_batches", "alerts",
                      "alert_notifications", "openlineage_runs", "openlineage_datasets", "openlineage_pending",
                      "agent_health", "dataset_ops", "datasets"):
            assert real.deleted[table] + glob_pass.deleted[table] > 0, table
        assert real.transactions >= 2 and real.longest_transaction_s < 10

        with db.read() as conn:
            for what, sql in ORPHANS:
                assert conn.execute(text(sql)).scalar_one() == 0, what
            cutoff_instant = (NOW - timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%S")
            assert conn.execute(text("SELECT COUNT(*) FROM dag_runs WHERE sort_key < :c AND sort_key <> ''"),
                                {"c": cutoff_instant}).scalar_one() == 0
            # the datasets every run used are still there (new runs use them)
            assert conn.execute(text("SELECT COUNT(*) FROM datasets WHERE path = '/data/in.parquet'")).scalar_one() \
                == 1
            # the shared application stays for the new task's work, shown under it; the old task's work went
            shared = conn.execute(text("SELECT id, context_id FROM spark_apps WHERE app_id = 'shared-app'")).one()
            assert conn.execute(text("SELECT context_id FROM spark_app_contexts WHERE spark_app_pk = :a"),
                                {"a": shared[0]}).scalars().all() == [shared[1]]
            assert conn.execute(text("SELECT stage_id FROM spark_stages WHERE spark_app_pk = :a"),
                                {"a": shared[0]}).scalars().all() == [101]
            assert conn.execute(text("SELECT job_id FROM spark_jobs WHERE spark_app_pk = :a"),
                                {"a": shared[0]}).scalars().all() == [101]
            # alerts about deleted attempts went, with their notifications; alerts about kept ones stayed
            assert conn.execute(text("SELECT ref FROM alerts")).scalars().all() == [new_attempt]
        assert _orphaned_audit(db) == []
        for pk, tree in new_trees.items():  # unchanged, but that the shared app is now its own
            assert _without_owner(tracker.get_json(f"/api/v1/dag-runs/{pk}")) == _without_owner(tree)
        assert tracker.get(f"/api/v1/dag-runs/{old[0]['id']}").status_code == 404
        assert reclaim_space(db, full=True)
        again = apply_retention(db, 30)
        assert not any(again.deleted.values())
    finally:
        db.dispose()


def test_one_retention_pass_at_a_time(fresh: Any) -> None:
    db = Database(fresh.db_url)
    other = Database(fresh.db_url)
    try:
        with retention_lease(db) as first:
            assert first
            with retention_lease(other) as second:
                assert not second  # another process (or replica) holds it: this round is skipped
        with retention_lease(other) as after:
            assert after
    finally:
        db.dispose()
        other.dispose()


@pytest.mark.parametrize("backend", BACKENDS)
def test_server_schedule_and_cli(backend: str, tracker_factory: Any) -> None:
    """`runlink server --retention-days 30` deletes old runs by itself; `runlink retention` reports per table."""
    tracker = tracker_factory(backend=backend, extra_args=["--retention-days", "30"],
                              extra_env={"RUNLINK_RETENTION_INTERVAL_S": "0.2"})
    for days in (40, 2):
        for batch in _run("scheduled_dag", days):
            assert tracker.post_events(batch).status_code == 202
    wait_for(lambda: len(tracker.get_json("/api/v1/dag-runs", dag_id="scheduled_dag")["items"]) == 1,
             "the scheduled pass deleted the 40-day-old run", context=tracker.log_tail)
    for batch in _run("cli_dag", 20):  # inside the server's 30 days: the CLI's 10 days delete it
        assert tracker.post_events(batch).status_code == 202
    command = [sys.executable, "-m", "runlink", "retention", "--keep-days", "10", "--dag", "nothing_*",
               "--db", tracker.db_url, "--dry-run"]
    dry = subprocess.run(command, capture_output=True, text=True, timeout=120, env={**os.environ,
                                                                                    "PYTHONPATH": str(PYTHON)})
    assert dry.returncode == 0, dry.stderr
    assert "would delete" in dry.stdout and "dag_runs" not in dry.stdout  # the glob matches no DAG
    command[command.index("nothing_*")] = "cli_*"
    real = subprocess.run(command[:-1], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(PYTHON)})
    assert real.returncode == 0, real.stderr
    assert "deleted" in real.stdout and "dag_runs" in real.stdout, real.stdout
    assert tracker.get_json("/api/v1/dag-runs", dag_id="cli_dag")["items"] == []
