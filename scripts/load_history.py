#!/usr/bin/env python
"""Build a large history through the tracker's real schema, for measuring list and detail pages at scale.

The database is migrated to head (the tracker's own Alembic chain), then filled with bulk inserts (COPY on
PostgreSQL, executemany in large transactions on SQLite) of the rows ingest would have made: DAG definitions, DAG
runs, task attempts and their contexts, one Spark application per attempt with its jobs and stages, and the
datasets each task writes and reads. Ids are the tracker's own (`linking.dag_run_pk`, `ids.context_id`, ...), so
the pages link up as after real ingest. Runs are spread over `--days` of daily schedules, newest last.

    .venv/bin/python scripts/load_history.py --db sqlite:////tmp/history.db --attempts 100000 --stages 1000000
    .venv/bin/python scripts/load_history.py --db postgresql+psycopg://postgres@127.0.0.1:5432/history \\
        --attempts 1000000 --stages 10000000          # the issue's figure

A PostgreSQL URL names a database that must exist (empty); `--create` creates it first.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from runlink import ids  # noqa: E402
from runlink.context import normalize  # noqa: E402
from runlink.tracker import linking, relink  # noqa: E402
from runlink.tracker.db import Database, upgrade  # noqa: E402
from runlink.tracker.models import (  # noqa: E402
    contexts,
    dag_runs,
    dags,
    dataset_ops,
    datasets,
    instances,
    spark_apps,
    spark_jobs,
    spark_stages,
    task_attempts,
)
from runlink.tracker.sqlutil import insert_rows  # noqa: E402

UID = "history"
STAGE_COLS = ("spark_app_pk", "stage_id", "attempt_id", "name", "num_tasks", "failed_tasks", "killed_tasks",
              "submission_time", "completion_time", "status", "job_ids", "executor_run_time_ms",
              "executor_cpu_time_ns", "input_bytes", "shuffle_write_bytes", "memory_spilled_bytes", "stamp",
              "context_id")
RUN_COLS = ("id", "uid", "dag_id", "canonical_key", "run_id", "logical_date", "logical_day", "placeholder",
            "ambiguous", "synthetic", "state", "start_date", "end_date", "run_type", "sort_key")
CONTEXT_COLS = ("id", "uid", "dag_id", "dag_run_id", "logical_date", "logical_day", "date_only", "task_id",
                "try_number", "map_index", "synthetic", "run_pk", "attempt_pk", "ambiguous")
ATTEMPT_COLS = ("id", "run_pk", "task_id", "map_index", "try_number", "placeholder", "state", "start_date",
                "end_date", "duration_s", "operator", "hostname")
APP_COLS = ("id", "app_id", "attempt_id", "context_id", "context_rank", "name", "spark_version", "master",
            "start_time", "end_time", "exit_code", "state", "start_stamp", "end_stamp")
JOB_COLS = ("spark_app_pk", "job_id", "stage_ids", "submission_time", "completion_time", "result", "start_stamp",
            "end_stamp", "context_id")
OP_COLS = ("id", "dataset_pk", "context_id", "spark_app_pk", "operation", "format", "rows", "time", "success")


def instant(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Loader:
    """Buffers rows per table and writes them in large chunks, each chunk one transaction."""

    def __init__(self, db: Database, chunk: int) -> None:
        self.db = db
        self.chunk = chunk
        self.buffers: dict[str, tuple[object, tuple[str, ...], list[tuple]]] = {}
        self.counts: dict[str, int] = {}

    def add(self, table: object, columns: tuple[str, ...], row: tuple) -> None:
        name = table.name  # type: ignore[attr-defined]
        entry = self.buffers.setdefault(name, (table, columns, []))
        entry[2].append(row)
        if len(entry[2]) >= self.chunk:
            self.flush(name)

    def flush(self, name: str | None = None) -> None:
        for key in [name] if name else list(self.buffers):
            table, columns, rows = self.buffers[key]
            if not rows:
                continue
            with self.db.write() as conn:
                insert_rows(conn, table, rows, columns)  # type: ignore[arg-type]
            self.counts[key] = self.counts.get(key, 0) + len(rows)
            rows.clear()


def load(db: Database, *, attempts: int, stages: int, dag_count: int, tasks: int, chunk: int) -> dict[str, int]:
    runs = max(1, attempts // tasks)
    stages_per_attempt = max(0, stages // max(1, runs * tasks))
    days = -(-runs // dag_count)
    start = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days)
    loader = Loader(db, chunk)
    loader.add(instances, ("uid", "first_seen"), (UID, instant(start)))
    dag_ids = [f"history_dag_{n:04d}" for n in range(dag_count)]
    task_ids = [f"task_{n:02d}" for n in range(tasks)]
    for dag_id in dag_ids:
        loader.add(dags, ("id", "uid", "dag_id", "schedule", "owners", "tags", "is_paused", "is_active", "stamp"),
                   (relink.dag_pk(UID, dag_id), UID, dag_id, "@daily", '["data"]', '["history"]', False, True,
                    instant(start)))
    dataset_pk: dict[str, str] = {}
    for dag_id in dag_ids:
        for task_id in task_ids:
            for kind in ("in", "out"):
                identity = f"table:warehouse.{dag_id}_{task_id}_{kind}"
                pk = str(uuid.uuid5(ids.NAMESPACE, "dataset:" + identity))
                dataset_pk[f"{dag_id}|{task_id}|{kind}"] = pk
                loader.add(datasets, ("id", "identity", "table_name", "format"),
                           (pk, identity, f"warehouse.{dag_id}_{task_id}_{kind}", "delta"))
    stage_n = 0
    for run_n in range(runs):
        dag_id = dag_ids[run_n % dag_count]
        day = start + timedelta(days=run_n // dag_count)
        logical = instant(day)
        run_id = f"scheduled__{day.isoformat()}"
        run_pk = linking.dag_run_pk(UID, dag_id, logical)
        failed = run_n % 17 == 0
        began = day + timedelta(hours=1)
        loader.add(dag_runs, RUN_COLS, (run_pk, UID, dag_id, logical, run_id, logical, logical[:10], False, False,
                                        False, "failed" if failed else "success", instant(began),
                                        instant(began + timedelta(minutes=tasks * 3)), "scheduled", logical))
        for task_n, task_id in enumerate(task_ids):
            ctx = normalize({"dag_id": dag_id, "dag_run_id": run_id, "logical_date": logical, "task_id": task_id,
                             "try_number": 1, "uid": UID})
            ctx_pk = ids.context_id(ctx)
            attempt_pk = linking.task_attempt_pk(run_pk, task_id, -1, 1)
            t0 = began + timedelta(minutes=task_n * 3)
            t1 = t0 + timedelta(minutes=2, seconds=run_n % 60)
            state = "failed" if failed and task_n == tasks - 1 else "success"
            loader.add(contexts, CONTEXT_COLS, (ctx_pk, UID, dag_id, run_id, logical, logical[:10], False, task_id,
                                                1, -1, False, run_pk, attempt_pk, False))
            loader.add(task_attempts, ATTEMPT_COLS, (attempt_pk, run_pk, task_id, -1, 1, False, state, instant(t0),
                                                     instant(t1), (t1 - t0).total_seconds(), "SparkSubmitOperator",
                                                     "worker-1"))
            app_id = f"app-{run_n:08d}-{task_n:02d}"
            app_pk = ids.spark_app_id(app_id, None)
            stamp = instant(t0)
            loader.add(spark_apps, APP_COLS, (app_pk, app_id, None, ctx_pk, "1111|" + ctx_pk, f"{dag_id}.{task_id}",
                                              "3.5.1", "yarn", instant(t0), instant(t1), 0, "succeeded", stamp,
                                              instant(t1)))
            jobs = max(1, stages_per_attempt // 5)
            for job in range(jobs):
                loader.add(spark_jobs, JOB_COLS, (app_pk, job, "[]", instant(t0), instant(t1), "succeeded", stamp,
                                                  instant(t1), ctx_pk))
            for stage_id in range(stages_per_attempt):
                stage_n += 1
                loader.add(spark_stages, STAGE_COLS, (
                    app_pk, stage_id, 0, f"map at job.py:{stage_id}", 200, 0, 0, instant(t0), instant(t1),
                    "succeeded", f"[{stage_id // 5}]", 1000 + stage_n % 997, 10**6 + stage_n % 991,
                    (stage_n % 1009) * 4096, (stage_n % 1013) * 1024, 0, stamp, ctx_pk))
            for kind, operation in (("in", "read"), ("out", "write")):
                loader.add(dataset_ops, OP_COLS, (f"{attempt_pk}:{kind}", dataset_pk[f"{dag_id}|{task_id}|{kind}"],
                                                  ctx_pk, app_pk, operation, "delta", 1000 + run_n, instant(t1),
                                                  True))
    loader.flush()
    return loader.counts


def create_postgres(url: str) -> None:
    import psycopg

    base, _, name = url.rpartition("/")
    with psycopg.connect(base.replace("+psycopg", "") + "/postgres", autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="database URL (SQLite file or PostgreSQL)")
    parser.add_argument("--create", action="store_true", help="create the PostgreSQL database first")
    parser.add_argument("--attempts", type=int, default=1_000_000, help="task attempts (one try each)")
    parser.add_argument("--stages", type=int, default=10_000_000, help="Spark stages in all")
    parser.add_argument("--dags", type=int, default=200, help="DAGs the runs are spread over (daily each)")
    parser.add_argument("--tasks", type=int, default=10, help="tasks per DAG run")
    parser.add_argument("--chunk", type=int, default=50_000, help="rows per insert transaction")
    args = parser.parse_args()
    if args.create and args.db.startswith("postgres"):
        create_postgres(args.db)
    db = Database(args.db)
    try:
        upgrade(db.engine)
        began = time.perf_counter()
        counts = load(db, attempts=args.attempts, stages=args.stages, dag_count=args.dags, tasks=args.tasks,
                      chunk=args.chunk)
        loaded = time.perf_counter() - began
        with db.write() as conn:  # fresh statistics for the planner after a bulk load
            conn.exec_driver_sql("ANALYZE")
    finally:
        db.dispose()
    print(f"loaded in {loaded:.1f}s: " + ", ".join(f"{name} {count:,}" for name, count in sorted(counts.items())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
