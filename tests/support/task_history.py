"""A task's runs as protocol events, for the diagnosis tests, the history alerts and scripts/bench_diagnosis.py:
normal runs, then a run whose input grew (its read stage spills) and whose groupBy stage met a hot key."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from runlink.protocol import make_event

BASE = datetime(2026, 10, 1, tzinfo=timezone.utc)
READ_SITE = "read at etl.py:12"
GROUP_SITE = "groupBy at etl.py:20"
#: the user's lines a listener with call sites and task distributions reports (`measured=True`)
READ_LINE = "/jobs/etl.py:12 load"
GROUP_LINE = "/jobs/etl.py:20 aggregate"
MIB = 1 << 20


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _quantiles(low: float, mid: float, high: float) -> dict[str, int]:
    return {"min": int(low), "p50": int(mid), "p95": int(high), "max": int(high)}


def _distribution(tasks: int, durations_ms: tuple[float, float, float], records: tuple[float, float, float],
                  spill: int) -> dict[str, Any]:
    """A stage's task distribution as the JVM listener reports it (skew = max / max(p50, 1))."""
    return {"tasks": tasks, "relative_error": 0.01,
            "metrics": {"duration_ms": _quantiles(*durations_ms), "shuffle_read_records": _quantiles(*records),
                        "memory_spilled_bytes": _quantiles(spill // tasks, spill // tasks, spill // tasks)},
            "skew": {"duration_ms": durations_ms[2] / max(durations_ms[1], 1),
                     "shuffle_read_records": records[2] / max(records[1], 1)},
            "slowest_task": {"task_id": 7, "duration_ms": int(durations_ms[2]), "executor_id": "driver", "host": "w1"}}


def _stage(app: dict[str, Any], ctx: dict[str, Any], stage_id: int, name: str, start: datetime, wall_s: float,
           *, tasks: int, run_s: float, input_bytes: int = 0, input_records: int = 0, shuffle_bytes: int = 0,
           spill: int = 0, gc_ms: int = 0, callsite: str | None = None,
           distribution: dict[str, Any] | None = None) -> dict[str, Any]:
    end = start + timedelta(seconds=wall_s)
    extra = {"callsite": callsite, "distribution": distribution} if distribution else {}
    return make_event("spark_stage.completed", {**extra,
        "stage_id": stage_id, "attempt_id": 0, "name": name, "num_tasks": tasks, "failed_tasks": 0,
        "killed_tasks": 0, "status": "succeeded", "job_ids": [0], "submission_time": iso(start),
        "completion_time": iso(end),
        "metrics": {"executor_run_time_ms": int(run_s * 1000), "jvm_gc_time_ms": gc_ms, "input_bytes": input_bytes,
                    "input_records": input_records, "shuffle_read_bytes": shuffle_bytes,
                    "shuffle_write_bytes": shuffle_bytes, "memory_spilled_bytes": spill,
                    "disk_spilled_bytes": spill // 4, "output_records": input_records // 10},
    }, context=ctx, spark=app, agent="jvm", time=iso(end))


def task_run(dag_id: str, index: int, *, grown: bool = False, failed: bool = False, uid: str = "prod",
             fillers: int = 0, task_id: str = "transform", measured: bool = False) -> list[dict[str, Any]]:
    """Run `index` of the task (one a day): 10 s before its first Spark job, a read stage (8 tasks), a groupBy
    stage (8 tasks on 2 slots), `fillers` small stages. `grown`: 4x the input (the read stage spills) and a hot key
    in the groupBy (one task 100 s, the others 5 s). `measured`: the stages carry the user's line and their task
    distribution (a listener of issue 17), else Spark's names and totals only."""
    logical = BASE + timedelta(days=index)
    run_id = f"scheduled__{iso(logical)}"
    base = {"dag_id": dag_id, "dag_run_id": run_id, "execution_date": iso(logical), "uid": uid}
    ctx = {**base, "task_id": task_id, "try_number": "1"}
    app = {"app_id": f"app-{dag_id}-{index}", "attempt_id": None}
    wobble = 1 + 0.02 * (index % 3)  # normal runs differ a little
    start = logical + timedelta(hours=1)
    first_job = start + timedelta(seconds=10)
    read_wall = (80 if grown else 20) * wobble
    group_wall = 100 if grown else 20 * wobble
    events = [
        make_event("dag_run.start", {"state": "running", "start_date": iso(start)}, context=base, agent="airflow",
                   time=iso(start)),
        make_event("task_attempt.start", {"state": "running", "start_date": iso(start),
                                          "operator": "SparkSubmitOperator"}, context=ctx, agent="airflow",
                   time=iso(start)),
        make_event("spark_app.start", {"name": "transform", "start_time": iso(start + timedelta(seconds=2))},
                   context=ctx, spark=app, agent="jvm", time=iso(start)),
        make_event("spark_executor", {"executor_id": "driver", "action": "added", "host": "w1", "cores": 2},
                   context=ctx, spark=app, agent="jvm", time=iso(start)),
        make_event("spark_job.start", {"job_id": 0, "stage_ids": list(range(2 + fillers)),
                                       "submission_time": iso(first_job), "callsite": READ_SITE},
                   context=ctx, spark=app, agent="jvm", time=iso(first_job)),
    ]
    read_task_ms = read_wall * 2 * 0.95 / 8 * 1000
    read_spill = 2048 * MIB if grown else 0
    events.append(_stage(app, ctx, 0, READ_SITE, first_job, read_wall, tasks=8, run_s=read_wall * 2 * 0.95,
                         input_bytes=(400 if grown else 100) * MIB, input_records=(4 if grown else 1) * 1_000_000,
                         shuffle_bytes=(40 if grown else 10) * MIB, spill=read_spill, gc_ms=int(read_wall * 40),
                         callsite=READ_LINE, distribution=_distribution(
                             8, (read_task_ms * 0.9, read_task_ms, read_task_ms * 1.1), (0, 0, 0), read_spill)
                         if measured else None))
    group_start = first_job + timedelta(seconds=read_wall)
    group_run = 100 + 7 * 5 if grown else group_wall * 2 * 0.95
    group_records = (12_500, 12_500, 300_000) if grown else (12_000, 12_500, 13_000)
    group_ms = (5000, 5000, 100_000) if grown else (4800, 5000, 5200)
    events.append(_stage(app, ctx, 1, GROUP_SITE, group_start, group_wall, tasks=8, run_s=group_run,
                         shuffle_bytes=(40 if grown else 10) * MIB, gc_ms=int(group_run * 20),
                         callsite=GROUP_LINE, distribution=_distribution(8, group_ms, group_records, 0)
                         if measured else None))
    at = group_start + timedelta(seconds=group_wall)
    for k in range(fillers):
        events.append(_stage(app, ctx, 2 + k, f"map at etl.py:{100 + k}", at, 0.05, tasks=2, run_s=0.08,
                             input_records=1000, callsite=f"/jobs/etl.py:{100 + k} enrich",
                             distribution=_distribution(2, (35, 40, 45), (0, 0, 0), 0) if measured else None))
        at += timedelta(seconds=0.05)
    end = at + timedelta(seconds=10)
    state = "failed" if failed else "success"
    events += [
        make_event("spark_job.end", {"job_id": 0, "result": "failed" if failed else "succeeded",
                                     "completion_time": iso(at),
                                     "failure_reason": "Job aborted: ExecutorLostFailure" if failed else None},
                   context=ctx, spark=app, agent="jvm", time=iso(at)),
        make_event("spark_app.end", {"end_time": iso(at + timedelta(seconds=1)), "exit_code": 0}, context=ctx,
                   spark=app, agent="jvm", time=iso(at)),
        make_event("metric", {"key": "rows_out", "value": (400_000 if grown else 100_000) + index}, context=ctx,
                   time=iso(at)),
        make_event("task_attempt.end", {"state": state, "start_date": iso(start), "end_date": iso(end),
                                        "duration_s": (end - start).total_seconds()}, context=ctx,
                   agent="airflow", time=iso(end)),
        make_event("dag_run.end", {"state": state, "start_date": iso(start), "end_date": iso(end)}, context=base,
                   agent="airflow", time=iso(end)),
    ]
    return events
