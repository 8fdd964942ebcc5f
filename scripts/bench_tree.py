#!/usr/bin/env python
"""Latency of GET /api/v1/dag-runs/{id} for a run whose Spark app has 10,000 stages (real server).

    .venv/bin/python scripts/bench_tree.py                 # SQLite
    .venv/bin/python scripts/bench_tree.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ingest import cpu_seconds  # noqa: E402

from runlink.protocol import make_event  # noqa: E402
from runlink.tracker.process import TrackerProcess  # noqa: E402


def tree_events(stages: int, dag_id: str) -> list[dict]:
    ctx = {"dag_id": dag_id, "execution_date": "2026-11-21T00:00:00+00:00",
           "dag_run_id": "scheduled__2026-11-21T00:00:00+00:00", "task_id": "big", "try_number": "1", "uid": "b"}
    app = {"app_id": f"app-{uuid.uuid4().hex[:8]}"}
    t = "2026-11-21T01:00:00Z"
    events = [
        make_event("task_attempt.start", {"state": "running", "start_date": t}, context=ctx, agent="airflow", time=t),
        make_event("spark_app.start", {"name": "big job", "start_time": t}, context=ctx, spark=app, agent="jvm",
                   time=t),
    ]
    for job in range(stages // 10):
        events.append(make_event("spark_job.start", {"job_id": job, "stage_ids": list(range(job * 10, job * 10 + 10))},
                                 context=ctx, spark=app, agent="jvm", time=t))
        events.append(make_event("spark_job.end", {"job_id": job, "result": "succeeded"}, context=ctx, spark=app,
                                 agent="jvm", time=t))
    for stage_id in range(stages):
        events.append(make_event("spark_stage.completed", {
            "stage_id": stage_id, "attempt_id": 0, "name": f"stage {stage_id}", "num_tasks": 100, "failed_tasks": 0,
            "status": "succeeded", "job_ids": [stage_id // 10], "submission_time": t, "completion_time": t,
            "metrics": {"executor_run_time_ms": stage_id, "executor_cpu_time_ns": stage_id * 1000,
                        "jvm_gc_time_ms": 1, "input_bytes": 1 << 20, "shuffle_write_bytes": 1 << 10,
                        "peak_execution_memory_bytes": 1 << 24, "memory_spilled_bytes": 0},
        }, context=ctx, spark=app, agent="jvm", time=t))
    for n in range(100):
        events.append(make_event("metric", {"key": f"m{n}", "value": n}, context=ctx, time=t))
    return events


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db")
    parser.add_argument("--stages", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    dag_id = f"bench_tree_{uuid.uuid4().hex[:6]}"
    events = tree_events(args.stages, dag_id)
    with tempfile.TemporaryDirectory(prefix="runlink-bench-tree-") as tmp:
        tracker = TrackerProcess(Path(tmp), args.db).start()
        proc, url, token = tracker.process, tracker.url, tracker.token
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {token}"
            for i in range(0, len(events), 500):
                body = gzip.compress(json.dumps({"events": events[i:i + 500]}).encode(), 1)
                response = session.post(url + "/api/v1/events", data=body, timeout=120,
                                        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"})
                assert response.status_code == 202, response.text
            run_pk = session.get(url + "/api/v1/dag-runs", params={"dag_id": dag_id}).json()["items"][0]["id"]
            first = session.get(url + f"/api/v1/dag-runs/{run_pk}")
            tree = first.json()
            count = sum(len(app["stages"]) for a in tree["task_attempts"] for app in a["spark_apps"])
            assert count == args.stages, count
            timings = []
            cpu_before = cpu_seconds(proc.pid)
            for _ in range(args.requests):
                began = time.perf_counter()
                response = session.get(url + f"/api/v1/dag-runs/{run_pk}")
                response.content  # noqa: B018 - read the whole body
                timings.append(time.perf_counter() - began)
                assert response.status_code == 200
            cpu = (cpu_seconds(proc.pid) - cpu_before) / args.requests
            backend = "PostgreSQL" if (args.db or "").startswith("postgres") else "SQLite"
            print(f"{backend}: GET /api/v1/dag-runs/{{id}} with {count} stages ({len(first.content) / 1e6:.1f} MB): "
                  f"median {statistics.median(timings) * 1000:.0f} ms, p95 "
                  f"{sorted(timings)[int(len(timings) * 0.95)] * 1000:.0f} ms, min {min(timings) * 1000:.0f} ms "
                  f"over {args.requests} requests; server CPU {cpu * 1000:.0f} ms/request; "
                  f"load average {os.getloadavg()[0]:.1f}")
        finally:
            tracker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
