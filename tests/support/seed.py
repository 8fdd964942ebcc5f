"""Realistic protocol events for UI tests and scripts/bench_ui.py: DAG runs with many tasks, a Spark app with many
stages (sequential and parallel, some spilling, some GC-heavy, one slow), datasets with row counts."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from typing import Any

import requests

from runlink.protocol import make_event


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ctx(dag_id: str, run_id: str, logical: datetime, uid: str | None, task_id: str | None = None,
        try_number: int | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"dag_id": dag_id, "dag_run_id": run_id, "execution_date": iso(logical)}
    if uid:
        c["uid"] = uid
    if task_id is not None:
        c["task_id"] = task_id
    if try_number is not None:
        c["try_number"] = str(try_number)
    return c


def dag_definition(dag_id: str, uid: str | None, tasks: list[str], next_run: datetime | None = None,
                   schedule: str = "@daily") -> dict[str, Any]:
    payload = {"dag_id": dag_id, "schedule": schedule, "owners": ["data-eng"], "tags": ["etl"], "is_paused": False,
               "tasks": [{"task_id": t} for t in tasks]}
    if next_run is not None:
        payload["next_run_date"] = iso(next_run)
    return make_event("dag.definition", payload, context={"uid": uid} if uid else None, agent="syncer",
                      time=iso(datetime.now(timezone.utc)))


def dag_run(dag_id: str, logical: datetime, *, tasks: int = 5, uid: str | None = "prod", failed: set[str] = frozenset(),
            task_seconds: float = 20.0, rng: random.Random | None = None, run_id: str | None = None,
            metrics: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """A finished DAG run: `tasks` tasks in a chain of waves (some parallel), the `failed` ones failing."""
    rng = rng or random.Random(1)
    run_id = run_id or f"scheduled__{iso(logical)}"
    base = ctx(dag_id, run_id, logical, uid)
    start = logical + timedelta(minutes=1)
    events = [make_event("dag_run.start", {"state": "running", "start_date": iso(start), "run_type": "scheduled"},
                         context=base, agent="airflow", time=iso(start))]
    t = start
    end = start
    names = task_names(tasks)
    for n, task_id in enumerate(names):
        if n % 4 == 0:
            t = end
        duration = task_seconds * (0.5 + rng.random())
        s, e = t + timedelta(seconds=rng.random() * 2), t + timedelta(seconds=duration)
        end = max(end, e)
        state = "failed" if task_id in failed else "success"
        tc = ctx(dag_id, run_id, logical, uid, task_id, 1)
        start_payload = {"state": "running", "start_date": iso(s), "hostname": "worker-1",
                         "operator": "airflow.providers.standard.operators.bash.BashOperator",
                         "params": {"bash_command": "echo hi", "db_password": "hunter2"}}
        events.append(make_event("task_attempt.start", start_payload, context=tc, agent="airflow", time=iso(s)))
        end_payload: dict[str, Any] = {"state": state, "end_date": iso(e), "duration_s": duration}
        if state == "failed":
            end_payload["error"] = {"type": "ValueError", "message": f"{task_id}: input file is empty",
                                    "traceback": "Traceback (most recent call last):\n  ...\nValueError: empty"}
        events.append(make_event("task_attempt.end", end_payload, context=tc, agent="airflow", time=iso(e)))
        for key, value in (metrics or {}).items():
            events.append(make_event("metric", {"key": key, "value": value}, context=tc, time=iso(e)))
    state = "failed" if failed else "success"
    events.append(make_event("dag_run.end", {"state": state, "end_date": iso(end)}, context=base, agent="airflow",
                             time=iso(end)))
    return events


def task_names(n: int) -> list[str]:
    kinds = ("extract", "clean", "join", "aggregate", "load", "check")
    return [f"{kinds[i % len(kinds)]}_{i:03d}" for i in range(n)]


def spark_app(context: dict[str, Any], app_id: str, start: datetime, *, stages: int = 40,
              rng: random.Random | None = None, fail_job: bool = False) -> list[dict[str, Any]]:
    """A Spark app: jobs of ~10 stages each; stages run in parallel pairs; a few spill, a few are GC-heavy,
    one is much slower than the rest."""
    rng = rng or random.Random(2)
    app = {"app_id": app_id}
    events = [make_event("spark_app.start", {"name": f"{context.get('task_id', 'job')}-spark", "spark_version": "4.2.0",
                                             "master": "local[4]", "start_time": iso(start),
                                             "conf": {"spark.executor.memory": "2g", "spark.hadoop.secret.key": "x"}},
                         context=context, spark=app, agent="jvm", time=iso(start)),
              make_event("spark_executor", {"executor_id": "driver", "action": "added", "host": "w1", "cores": 4},
                         context=context, spark=app, agent="jvm", time=iso(start))]
    t = start + timedelta(seconds=1)
    slow = stages // 2
    jobs = max(1, stages // 10)
    stage_id = 0
    for job in range(jobs):
        job_stages = list(range(stage_id, min(stages, stage_id + 10) if job < jobs - 1 else stages))
        job_start = t
        events.append(make_event("spark_job.start", {"job_id": job, "stage_ids": job_stages,
                                                     "submission_time": iso(job_start),
                                                     "description": f"save at etl.py:{40 + job}"},
                                 context=context, spark=app, agent="jvm", time=iso(job_start)))
        for i, sid in enumerate(job_stages):
            duration = (20.0 if sid == slow else 0.5 + rng.random() * 2)
            s = t
            e = s + timedelta(seconds=duration)
            if i % 2 == 1 or i == len(job_stages) - 1:
                t = e
            failed = fail_job and job == jobs - 1 and sid == job_stages[-1]
            run_ms = int(duration * 1000 * 3.5)
            metrics = {"executor_run_time_ms": run_ms if sid != slow else int(duration * 1000 * 1.2),
                       "executor_cpu_time_ns": run_ms * 700_000,
                       "jvm_gc_time_ms": run_ms // (4 if sid % 7 == 3 else 50),
                       "input_bytes": rng.randint(1, 500) << 20, "input_records": rng.randint(1000, 10 ** 7),
                       "output_bytes": 0, "shuffle_read_bytes": rng.randint(0, 200) << 20,
                       "shuffle_write_bytes": rng.randint(0, 200) << 20,
                       "memory_spilled_bytes": (rng.randint(100, 900) << 20) if sid % 11 == 5 else 0,
                       "disk_spilled_bytes": (rng.randint(10, 90) << 20) if sid % 11 == 5 else 0,
                       "peak_execution_memory_bytes": rng.randint(10, 900) << 20}
            events.append(make_event("spark_stage.completed", {
                "stage_id": sid, "attempt_id": 0,
                "name": f"{'parquet at' if i == 0 else 'groupBy at'} etl.py:{40 + job}",
                "num_tasks": 200, "failed_tasks": 3 if failed else 0, "killed_tasks": 0,
                "status": "failed" if failed else "succeeded", "job_ids": [job],
                "failure_reason": "Job aborted due to stage failure: ExecutorLostFailure" if failed else None,
                "submission_time": iso(s), "completion_time": iso(e), "metrics": metrics,
            }, context=context, spark=app, agent="jvm", time=iso(e)))
        stage_id = job_stages[-1] + 1
        failed_job = fail_job and job == jobs - 1
        events.append(make_event("spark_job.end", {
            "job_id": job, "result": "failed" if failed_job else "succeeded", "completion_time": iso(t),
            "failure_reason": ("org.apache.spark.SparkException: Job aborted due to stage failure"
                               if failed_job else None),
        }, context=context, spark=app, agent="jvm", time=iso(t)))
    events.append(make_event("sql_query", {
        "execution_id": 1, "action": "save", "duration_ms": 1500.0, "success": not fail_job,
        "error": {"type": "SparkException", "message": "Job aborted"} if fail_job else None,
        "inputs": [{"operation": "read", "path": "s3://lake/raw/events", "format": "parquet", "rows": 1_200_000}],
        "outputs": [{"operation": "write", "table": "analytics.daily_events", "format": "delta", "rows": 48_000,
                     "mode": "overwrite"}],
        "callsite": "etl.py:88"}, context=context, spark=app, agent="pyspark", time=iso(t)))
    events.append(make_event("spark_app.end", {"end_time": iso(t + timedelta(seconds=1)), "exit_code": 0},
                             context=context, spark=app, agent="jvm", time=iso(t + timedelta(seconds=1))))
    return events


def post(url: str, token: str, events: list[dict[str, Any]], chunk: int = 2000) -> None:
    for start in range(0, len(events), chunk):
        response = requests.post(url + "/api/v1/events", json={"events": events[start:start + chunk]},
                                 headers={"Authorization": f"Bearer {token}"}, timeout=120)
        assert response.status_code == 202, response.text[:2000]
