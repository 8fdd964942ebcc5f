#!/usr/bin/env python
"""Ingestion throughput of a real `runlink server` (events/s, batches of 500, gzip, realistic mix).

The mix is what a busy Spark-on-Airflow deployment sends: mostly spark_stage.completed, then user metrics
and job start/end, with some executors, SQL queries, logs and task-attempt events; each batch carries
the contexts of a few tasks (so linking runs too). Bodies are built and gzipped before the clock starts, and
each client sends one batch over its keep-alive connection first (not timed): the rate is that of warm workers,
their database connections open and statements prepared, as in a tracker that has been up for a while.

    .venv/bin/python scripts/bench_ingest.py                      # SQLite (fresh RUNLINK_HOME)
    .venv/bin/python scripts/bench_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench
    .venv/bin/python scripts/bench_ingest.py --db sqlite --db postgresql+psycopg://postgres@127.0.0.1:5432/x
    .venv/bin/python scripts/bench_ingest.py --db postgresql+psycopg://postgres@127.0.0.1:5432/x \
        --replicas 1 --replicas 2                                  # two trackers on one database vs one
    .venv/bin/python scripts/bench_ingest.py --db sqlite --db postgresql+psycopg://postgres@127.0.0.1:5432/x \
        --durability normal --durability full                      # both backends at both durability levels

Each batch's answer carries `Server-Timing: lock;dur=..., total;dur=...`: the share of server time spent
waiting for the write lock is reported per run.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import itertools
import json
import os
import random
import statistics
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
    return sum(cpu_by_process(pid).values())


def cpu_by_process(pid: int) -> dict[int, float]:
    """User+system CPU of a process and of each of its direct children (the tracker's worker processes), by pid,
    from /proc."""
    pids = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as handle:
                pids += [int(p) for p in handle.read().split()]
    except OSError:
        pass
    return {p: _process_cpu(p)[1] for p in pids}


def busiest_share(before: dict[int, float], after: dict[int, float]) -> float:
    """The busiest process's share of the CPU the processes (of those seen before) used between two readings:
    with 2 workers, 0.5 is an even split. The kernel places each kept-alive connection on a worker once (by its
    address hash), so in some rounds one worker serves most of them while the other idles, on either backend."""
    used = [after.get(pid, cpu) - cpu for pid, cpu in before.items()]
    return max(used) / sum(used) if sum(used) else 0.0


def _process_cpu(pid: int | str) -> tuple[str, float]:
    """(command name, user+system CPU seconds) of a process, from /proc; ("", 0.0) once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            head, _, tail = handle.read().rpartition(")")
    except OSError:
        return "", 0.0
    fields = tail.split()
    return head.partition("(")[2], (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds() -> float:
    """User+system CPU of every PostgreSQL server process on this machine (backends, WAL writer, checkpointer):
    the part of a round's CPU that SQLite spends inside the tracker."""
    processes = (_process_cpu(entry) for entry in os.listdir("/proc") if entry.isdigit())
    return sum(cpu for name, cpu in processes if name.startswith("postgres"))


def start_servers(home: Path, db: str | None, workers: int, replicas: int, durability: str) -> list:
    """`replicas` tracker processes on one database (each its own home, port and admin token)."""
    from runlink.tracker.process import TrackerProcess

    db = db or f"sqlite:///{home / 'runlink.db'}"
    return [TrackerProcess(home / f"replica-{n}", db, workers=workers,
                           env={"RUNLINK_DB_DURABILITY": durability}).start() for n in range(replicas)]


def _split(url: str) -> tuple[str, str, str]:
    """`postgresql+psycopg://h/name?options=...` -> (server part, database name, "?query" or "")."""
    path, mark, query = url.partition("?")
    base, _, name = path.rpartition("/")
    return base, name, mark + query


def _admin(url: str, database: str = "postgres"):
    """An autocommit psycopg connection to `database` on `url`'s server."""
    import psycopg

    return psycopg.connect(_split(url)[0].replace("+psycopg", "") + "/" + database, autocommit=True)


def scratch_postgres(url: str) -> tuple[str, str]:
    """A fresh database on `url`'s server, with a random name and `url`'s query (dropped by the caller): (its
    URL, its name)."""
    base, _name, query = _split(url)
    name = f"runlink_bench_{uuid.uuid4().hex[:10]}"
    with _admin(url) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{base}/{name}{query}", name


def drop_postgres(url: str) -> None:
    _base, name, _query = _split(url)
    with _admin(url) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def postgres_counters(url: str) -> dict[str, float]:
    """The server-wide counters that explain a round's time beyond the tracker: WAL written, full-page images,
    checkpoints started, buffers the backends wrote themselves, and sequential scans in the round's database."""
    _base, name, _query = _split(url)
    with _admin(url) as conn:
        wal = conn.execute("SELECT wal_bytes, wal_fpi, wal_sync FROM pg_stat_wal").fetchone()
        bgw = conn.execute("SELECT checkpoints_timed + checkpoints_req, buffers_backend, buffers_checkpoint "
                           "FROM pg_stat_bgwriter").fetchone()
    figures = {"wal_mb": float(wal[0]) / 2**20, "fpi": wal[1], "wal_syncs": wal[2], "checkpoints": bgw[0],
               "backend_writes": bgw[1], "checkpoint_writes": bgw[2]}
    import psycopg

    try:
        with _admin(url, name) as conn:
            figures["seq_scans"] = conn.execute("SELECT COALESCE(SUM(seq_scan), 0) FROM pg_stat_user_tables "
                                                "WHERE relname <> 'alembic_version'").fetchone()[0]
            figures["sessions"] = conn.execute("SELECT sessions FROM pg_stat_database WHERE datname = "
                                               "current_database()").fetchone()[0]
    except psycopg.OperationalError:
        figures["seq_scans"] = figures["sessions"] = 0
    return figures


def server_timing(header: str) -> dict[str, float]:
    """`Server-Timing: lock;dur=1.2, total;dur=40.0` -> {"lock": 1.2, "total": 40.0} (ms)."""
    out = {}
    for part in header.split(","):
        name, _, dur = part.strip().partition(";dur=")
        if dur:
            out[name] = float(dur)
    return out


def run_once(args: argparse.Namespace, db: str | None, replicas: int, durability: str, bodies: list[bytes],
             n_events: int) -> dict:
    """One load against `replicas` fresh trackers on `db`; returns the figures."""
    scratch = db is not None and db.startswith("postgres") and not args.url
    warmup = min(max(args.clients, 1 if args.url else replicas), len(bodies) // 2)
    if scratch:
        db, _ = scratch_postgres(db)
    procs = []
    try:
        with tempfile.TemporaryDirectory(prefix="runlink-bench-") as tmp:
            if args.url:
                targets = [(args.url, args.token)]
            else:
                procs = start_servers(Path(tmp), db, args.workers, replicas, durability)
                targets = [(p.url, p.token) for p in procs]
            sessions = [requests.Session() for _ in range(args.clients)]
            latencies: list[float] = []
            lock_ms: list[float] = []
            write_ms: list[float] = []
            server_ms: list[float] = []

            def send(index: int) -> None:
                url, token = targets[index % len(targets)]
                headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                           "Content-Encoding": "gzip"}
                session = sessions[index % args.clients]
                began = time.perf_counter()
                response = session.post(url + "/api/v1/events", data=bodies[index], headers=headers, timeout=120)
                latencies.append(time.perf_counter() - began)
                if response.status_code != 202:
                    raise SystemExit(f"batch {index}: {response.status_code} {response.text[:500]}")
                timing = server_timing(response.headers.get("server-timing", ""))
                lock_ms.append(timing.get("lock", 0.0))
                write_ms.append(timing.get("write", 0.0))
                server_ms.append(timing.get("total", 0.0))

            # warm-up, not timed: a batch through each client's keep-alive connection, so every worker has served
            # (its database connection open, its statements prepared) before the clock starts; one batch warmed
            # only the worker the kernel gave that connection to
            for warm in range(warmup):
                send(warm)
            cpu_before = [cpu_by_process(p.process.pid) for p in procs]
            counters_before = postgres_counters(db) if scratch else {}
            pg_cpu_before = postgres_cpu_seconds()
            client_cpu_before = sum(os.times()[:2])
            lock_ms.clear()
            write_ms.clear()
            server_ms.clear()
            started = time.perf_counter()
            with concurrent.futures.ThreadPoolExecutor(args.clients) as pool:
                list(pool.map(send, range(warmup, len(bodies))))
            elapsed = time.perf_counter() - started
            cpu_after = [cpu_by_process(p.process.pid) for p in procs]
            cpu = sum(sum(after.values()) for after in cpu_after) - sum(sum(b.values()) for b in cpu_before)
            supervisors = {p.process.pid for p in procs}
            workers_before = {pid: value for b in cpu_before for pid, value in b.items() if pid not in supervisors}
            busiest = busiest_share(workers_before, {pid: value for a in cpu_after for pid, value in a.items()})
            pg_cpu = postgres_cpu_seconds() - pg_cpu_before
            client_cpu = sum(os.times()[:2]) - client_cpu_before
            counters = ({key: value - counters_before[key] for key, value in postgres_counters(db).items()}
                        if scratch else {})
    finally:
        for p in procs:
            p.stop()
        if scratch:
            drop_postgres(db)
    sent = n_events - min(args.batch, n_events) * warmup
    return {"backend": "PostgreSQL" if (db or "").startswith("postgres") else "SQLite", "rate": sent / elapsed,
            "elapsed": elapsed, "sent": sent, "cpu": cpu, "busiest": busiest,
            "pg_cpu": pg_cpu, "client_cpu": client_cpu, "median": statistics.median(latencies),
            "p95": sorted(latencies)[int(len(latencies) * 0.95)],
            "lock_share": sum(lock_ms) / sum(server_ms) if sum(server_ms) else 0.0,
            "lock_median": statistics.median(lock_ms), "write_median": statistics.median(write_ms),
            "server_median": statistics.median(server_ms), "postgres": counters}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", action="append",
                        help="database URL, or 'sqlite' (default SQLite in a fresh home); repeat to compare "
                             "side by side in one run. A PostgreSQL URL names the server: each run gets a fresh "
                             "scratch database there, dropped afterwards")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=8,
                        help="concurrent senders, each an agent with its own keep-alive connection")
    parser.add_argument("--workers", type=int, default=2, help="tracker worker processes")
    parser.add_argument("--replicas", type=int, action="append",
                        help="tracker processes on one database, batches sent round robin (repeat to compare)")
    parser.add_argument("--durability", action="append", choices=("normal", "full"),
                        help="the trackers' RUNLINK_DB_DURABILITY (repeat to compare; default normal)")
    parser.add_argument("--rounds", type=int, default=1, help="repeat every setup, interleaved; best and median")
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

    results: dict[tuple[str | None, int, str], list[dict]] = {}
    setups = list(itertools.product(args.db or [None], args.replicas or [1], args.durability or ["normal"]))
    for round_n in range(args.rounds):  # interleaved: a busy moment of the machine weighs on every setup alike
        for db, replicas, durability in setups:
            figures = run_once(args, None if db == "sqlite" else db, replicas, durability, bodies, len(events))
            figures["replicas"] = replicas
            figures["round"] = round_n + 1
            figures["setup"] = f"{figures['backend']} x{replicas}" + (f" {durability}" if args.durability else "")
            results.setdefault((db, replicas, durability), []).append(figures)
            print(f"round {round_n + 1}: {figures['setup']}: {figures['sent']} events in "
                  f"{figures['elapsed']:.2f}s = {figures['rate']:,.0f} events/s (batches of {args.batch}, "
                  f"{args.clients} clients, {args.workers} workers each; batch latency median "
                  f"{figures['median'] * 1000:.1f} ms, p95 {figures['p95'] * 1000:.1f} ms); waiting for the "
                  f"write lock: {figures['lock_share']:.1%} of server time (median {figures['lock_median']:.1f} "
                  f"ms a batch; the write with it {figures['write_median']:.1f} ms of "
                  f"{figures['server_median']:.1f} ms in the server); CPU: tracker {figures['cpu']:.2f} s (the "
                  f"busiest worker {figures['busiest']:.0%} of it), "
                  f"PostgreSQL {figures['pg_cpu']:.2f} s, load generator {figures['client_cpu']:.2f} s; load "
                  f"average now {os.getloadavg()[0]:.1f}", flush=True)
            if figures["postgres"]:
                print("  PostgreSQL in the round: " + ", ".join(
                    f"{key} {value:,.0f}" for key, value in figures["postgres"].items()), flush=True)
    medians = {key: statistics.median(f["rate"] for f in runs) for key, runs in results.items()}
    for key, runs in results.items():
        best = max(runs, key=lambda f: f["rate"])
        # compared with the first setup of the same durability (SQLite when it runs first, as in the examples)
        base_key = next(k for k in results if k[2] == key[2])
        base = results[base_key][0]
        # and round by round (the machine's busy moments weigh on both setups of a round alike)
        paired = statistics.median(f["rate"] / b["rate"] for f, b in zip(runs, results[base_key], strict=True))
        print(f"median of {args.rounds}: {best['setup']}: {medians[key]:,.0f} events/s (best {best['rate']:,.0f}), "
              f"{medians[key] / medians[base_key]:.0%} of {base['setup']}'s median, {paired:.0%} as the median of "
              f"the rounds' ratios; waiting for the write lock "
              f"{statistics.median(f['lock_share'] for f in runs):.1%} of server time (median)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
