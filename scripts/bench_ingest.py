#!/usr/bin/env python
"""Ingestion throughput of a real `runlink server` (events/s, batches of 500, gzip, realistic mix).

The mix is what a busy Spark-on-Airflow deployment sends: mostly spark_stage.completed, then user metrics
and job start/end, with some executors, SQL queries, logs and task-attempt events; each batch carries
the contexts of a few tasks (so linking runs too). Bodies are built and gzipped before the clock starts.

    .venv/bin/python scripts/bench_ingest.py                      # SQLite (fresh RUNLINK_HOME)
    .venv/bin/python scripts/bench_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

from runlink.protocol import make_event  # noqa: E402


def build_events(n: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    events: list[dict] = []
    run = 0
    while len(events) < n:
        run += 1
        dag = f"bench_dag_{run % 50}"
        day = 1 + run % 28
        base = {"dag_id": dag, "execution_date": f"2026-10-{day:02d}T00:00:00+00:00",
                "dag_run_id": f"scheduled__2026-10-{day:02d}T00:00:00+00:00", "uid": "bench"}
        task = {**base, "task_id": f"t{run % 7}", "try_number": "1"}
        app = {"app_id": f"app-{run}-{uuid.uuid4().hex[:6]}"}
        t = f"2026-10-{day:02d}T01:00:00Z"
        events.append(make_event("task_attempt.start", {"state": "running", "start_date": t}, context=task,
                                 agent="airflow", time=t))
        events.append(make_event("spark_app.start", {"name": f"job {run}", "start_time": t}, context=task,
                                 spark=app, agent="jvm", time=t))
        job = 0
        for stage_id in range(300):
            if stage_id % 10 == 0:
                events.append(make_event("spark_job.start", {"job_id": job, "stage_ids": list(range(stage_id,
                                         stage_id + 10))}, context=task, spark=app, agent="jvm", time=t))
            metrics = {name: rng.randint(0, 10**9) for name in (
                "executor_run_time_ms", "executor_cpu_time_ns", "executor_deserialize_time_ms", "jvm_gc_time_ms",
                "result_size_bytes", "input_bytes", "input_records", "output_bytes", "output_records",
                "shuffle_read_bytes", "shuffle_read_records", "shuffle_write_bytes", "shuffle_write_records",
                "memory_spilled_bytes", "disk_spilled_bytes", "peak_execution_memory_bytes")}
            events.append(make_event("spark_stage.completed", {
                "stage_id": stage_id, "attempt_id": 0, "name": f"map at job.py:{stage_id}", "num_tasks": 200,
                "failed_tasks": 0, "killed_tasks": 0, "status": "succeeded", "job_ids": [job],
                "submission_time": t, "completion_time": t, "metrics": metrics,
            }, context=task, spark=app, agent="jvm", time=t))
            if stage_id % 3 == 0:
                events.append(make_event("metric", {"key": f"m{stage_id % 40}", "value": rng.random()},
                                         context=task, time=t))
            if stage_id % 10 == 9:
                events.append(make_event("spark_job.end", {"job_id": job, "result": "succeeded",
                                                           "completion_time": t},
                                         context=task, spark=app, agent="jvm", time=t))
                job += 1
            if stage_id % 50 == 0:
                events.append(make_event("sql_query", {"execution_id": stage_id, "action": "save",
                                                       "duration_ms": 10.0, "success": True,
                                                       "inputs": [{"operation": "read", "path": "/in"}],
                                                       "outputs": [{"operation": "write", "table": "t.out"}]},
                                         context=task, spark=app, agent="pyspark", time=t))
                events.append(make_event("spark_executor", {"executor_id": str(stage_id), "action": "added",
                                                            "host": "h", "cores": 4},
                                         context=task, spark=app, agent="jvm", time=t))
                events.append(make_event("log", {"text": "line\n" * 20, "position": "chunk", "seq": stage_id},
                                         context=task, agent="airflow", time=t))
        events.append(make_event("spark_app.end", {"end_time": t, "exit_code": 0}, context=task, spark=app,
                                 agent="jvm", time=t))
        events.append(make_event("task_attempt.end", {"state": "success", "end_date": t}, context=task,
                                 agent="airflow", time=t))
    return events[:n]


def cpu_seconds(pid: int) -> float:
    """User+system CPU of a process and its direct children (uvicorn workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    total = 0.0
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:
            pass
    return total


def start_server(home: Path, db: str | None, workers: int) -> tuple[subprocess.Popen, str, str]:
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home, db, workers=workers).start()
    return tracker.process, tracker.url, tracker.token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default SQLite in a fresh home)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent senders, each an agent with its own keep-alive connection")
    parser.add_argument("--workers", type=int, default=2, help="tracker worker processes")
    parser.add_argument("--url", help="use a running tracker instead of starting one (needs --token)")
    parser.add_argument("--token")
    args = parser.parse_args()

    print(f"building {args.events} events ...", flush=True)
    events = build_events(args.events)
    kinds: dict[str, int] = {}
    for e in events:
        kinds[e["type"]] = kinds.get(e["type"], 0) + 1
    bodies = [gzip.compress(json.dumps({"events": events[i:i + args.batch]}).encode(), 1)
              for i in range(0, len(events), args.batch)]
    mix = ", ".join(f"{k} {v * 100 / len(events):.0f}%" for k, v in sorted(kinds.items(), key=lambda kv: -kv[1]))
    print(f"mix: {mix}")

    proc = None
    with tempfile.TemporaryDirectory(prefix="runlink-bench-") as tmp:
        if args.url:
            url, token = args.url, args.token
        else:
            proc, url, token = start_server(Path(tmp), args.db, args.workers)
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                   "Content-Encoding": "gzip"}
        try:
            sessions = [requests.Session() for _ in range(args.clients)]
            latencies: list[float] = []

            def send(index: int) -> None:
                session = sessions[index % args.clients]
                began = time.perf_counter()
                response = session.post(url + "/api/v1/events", data=bodies[index], headers=headers, timeout=120)
                latencies.append(time.perf_counter() - began)
                if response.status_code != 202:
                    raise SystemExit(f"batch {index}: {response.status_code} {response.text[:500]}")

            send(0)  # warm-up (migrations done, caches hot); not timed
            cpu_before = cpu_seconds(proc.pid) if proc else 0.0
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(send, range(1, len(bodies))))
            elapsed = time.perf_counter() - started
            cpu = (cpu_seconds(proc.pid) - cpu_before) if proc else 0.0
            sent = len(events) - min(args.batch, len(events))
            backend = "PostgreSQL" if (args.db or "").startswith("postgres") else "SQLite"
            print(f"{backend}: {sent} events in {elapsed:.2f}s = {sent / elapsed:,.0f} events/s "
                  f"(batches of {args.batch}, {args.clients} clients, {args.workers} workers; batch latency median "
                  f"{statistics.median(latencies) * 1000:.1f} ms, p95 "
                  f"{sorted(latencies)[int(len(latencies) * 0.95)] * 1000:.1f} ms)")
            if proc:
                print(f"server CPU: {cpu:.2f} s = {cpu * 1e6 / sent:.0f} us/event "
                      f"(= {sent / cpu:,.0f} events per CPU-second); load average now {os.getloadavg()[0]:.1f}")
        finally:
            if proc is not None:
                proc.terminate()
                proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
