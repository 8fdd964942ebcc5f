"""Protocol v1 events for tests: a whole Airflow + Spark run, built with the real `make_event`."""

from __future__ import annotations

from typing import Any

from runlink.protocol import make_event


def event(type_: str, payload: dict[str, Any], *, context: dict[str, Any] | None = None,
          spark: dict[str, Any] | None = None, agent: str = "python", time: str | None = None,
          event_id: str | None = None) -> dict[str, Any]:
    return make_event(type_, payload, context=context, spark=spark, agent=agent, time=time or "2026-11-21T01:00:00Z",
                      event_id=event_id)


def stage(app: dict[str, Any], stage_id: int, *, context: dict[str, Any] | None = None, attempt_id: int = 0,
          status: str = "succeeded", time: str = "2026-11-21T01:00:10Z", agent: str = "jvm") -> dict[str, Any]:
    return event("spark_stage.completed", {
        "stage_id": stage_id, "attempt_id": attempt_id, "name": f"stage {stage_id}", "num_tasks": 4,
        "failed_tasks": 0, "killed_tasks": 0, "status": status, "job_ids": [stage_id // 3],
        "submission_time": "2026-11-21T01:00:01Z", "completion_time": time,
        "metrics": {"executor_run_time_ms": 100 + stage_id, "executor_cpu_time_ns": 5_000_000, "jvm_gc_time_ms": 3,
                    "input_bytes": 1024, "input_records": 10, "shuffle_write_bytes": 512,
                    "peak_execution_memory_bytes": 1 << 20, "memory_spilled_bytes": 0, "disk_spilled_bytes": 0},
    }, context=context, spark=app, agent=agent, time=time)


def full_run(dag_id: str, *, uid: str = "prod", ts: str = "2026-11-21T00:00:00+00:00",
             run_id: str = "scheduled__2026-11-21T00:00:00+00:00", stages: int = 3) -> list[dict[str, Any]]:
    """One DAG run, one task (try 1) that runs one Spark app, seen by every agent, in a natural order."""
    base = {"dag_id": dag_id, "execution_date": ts, "dag_run_id": run_id, "uid": uid}
    task = {**base, "task_id": "transform", "try_number": "1"}
    app = {"app_id": f"app-{dag_id}", "attempt_id": None}
    events = [
        event("dag.definition", {"dag_id": dag_id, "schedule": "@daily", "tags": ["etl"]}, context={"uid": uid},
              agent="syncer", time="2026-11-21T00:00:01Z"),
        event("dag_run.start", {"state": "running", "start_date": "2026-11-21T00:00:05Z", "run_type": "scheduled",
                                "conf": {"a": 1}}, context=base, agent="airflow", time="2026-11-21T00:00:05Z"),
        event("task_attempt.start", {"state": "running", "start_date": "2026-11-21T00:59:00Z",
                                     "operator": "SparkSubmitOperator", "params": {"x": "1"}, "hostname": "w1"},
              context=task, agent="airflow", time="2026-11-21T00:59:00Z"),
        event("spark_app.start", {"name": "transform-job", "spark_version": "4.2.0", "master": "local[2]",
                                  "start_time": "2026-11-21T01:00:00Z"}, context=task, spark=app, agent="jvm",
              time="2026-11-21T01:00:00Z"),
        event("spark_job.start", {"job_id": 0, "stage_ids": list(range(stages))}, context=task, spark=app,
              agent="jvm", time="2026-11-21T01:00:01Z"),
        *(stage(app, n, context=task) for n in range(stages)),
        event("spark_job.end", {"job_id": 0, "result": "succeeded", "completion_time": "2026-11-21T01:00:30Z"},
              context=task, spark=app, agent="jvm", time="2026-11-21T01:00:30Z"),
        event("spark_executor", {"executor_id": "driver", "action": "added", "host": "w1", "cores": 2},
              context=task, spark=app, agent="jvm", time="2026-11-21T01:00:00Z"),
        event("sql_query", {"execution_id": 1, "action": "save", "duration_ms": 1200, "success": True,
                            "inputs": [{"operation": "read", "path": "/data/in.parquet", "format": "parquet",
                                        "rows": 10}],
                            "outputs": [{"operation": "write", "table": "db.out", "format": "delta", "rows": 10}]},
              context=task, spark=app, agent="pyspark", time="2026-11-21T01:00:31Z"),
        event("spark_app.end", {"end_time": "2026-11-21T01:00:40Z", "exit_code": 0}, context=task, spark=app,
              agent="jvm", time="2026-11-21T01:00:40Z"),
        event("metric", {"key": "rows", "value": 10}, context={**task, "execution_date": ts[:10],
                                                                 "dag_run_id": None, "try_number": None},
              time="2026-11-21T01:00:41Z"),
        event("dataset", {"operation": "write", "name": "out", "path": "/data/out.csv", "rows": 10,
                          "schema": [{"name": "a", "type": "int"}]}, context=task, time="2026-11-21T01:00:42Z"),
        event("log", {"text": "hello\n", "position": "tail", "seq": 1}, context=task, agent="airflow",
              time="2026-11-21T01:00:43Z"),
        event("task_attempt.end", {"state": "success", "end_date": "2026-11-21T01:01:00Z", "duration_s": 120.0},
              context=task, agent="airflow", time="2026-11-21T01:01:00Z"),
        event("task_attempt.state", {"state": "success", "start_date": "2026-11-21T00:59:00Z",
                                     "end_date": "2026-11-21T01:01:00Z"}, context=task, agent="syncer",
              time="2026-11-21T01:02:00Z"),
        event("dag_run.end", {"state": "success", "end_date": "2026-11-21T01:01:05Z"}, context=base, agent="airflow",
              time="2026-11-21T01:01:05Z"),
        event("agent_health", {"events_sent": 10, "events_dropped": 0}, context=task, time="2026-11-21T01:01:06Z"),
    ]
    return events
