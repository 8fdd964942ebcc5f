#!/usr/bin/env python
"""Server time of `GET /api/v1/task-attempts/{id}/diagnosis` for a task with many runs of many stages (issue 17:
50 runs x 200 stages, target <= 100 ms median) on SQLite and PostgreSQL.

A real `runlink server` per database (PostgreSQL: a scratch database, dropped afterwards) is fed the task's runs
through the real ingest (tests/support/task_history.py: normal runs, the last with grown input, a hot key and
spill); then the last attempt's diagnosis is asked for `--requests` times (after a warm-up) and the route's own
Server-Timing (the diagnosis in its worker thread, and that thread's CPU time) is read, with the client-side latency
beside it. The machine's load average is printed with the figures: other work on it stretches every request's wall
time, not its CPU time.

    .venv/bin/python scripts/bench_diagnosis.py [--runs 50] [--stages 200] [--requests 50]
        [--db sqlite --db postgresql+psycopg://postgres@127.0.0.1:5432/bench] [--totals-only] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "tests"))  # support.* (as under pytest)

from bench_ingest import drop_postgres, scratch_postgres, server_timing  # noqa: E402

from runlink.tracker.process import TrackerProcess  # noqa: E402
from support.task_history import task_run  # noqa: E402


def _feed(tracker: TrackerProcess, dag_id: str, runs: int, stages: int, measured: bool) -> float:
    """Ingest the task's runs (one batch per run); returns the seconds it took."""
    started = time.perf_counter()
    session = requests.Session()
    for index in range(runs):
        events = task_run(dag_id, index, grown=index == runs - 1, fillers=stages - 2, measured=measured)
        response = session.post(tracker.url + "/api/v1/events", json={"events": events},
                                headers={"Authorization": f"Bearer {tracker.token}"}, timeout=300)
        response.raise_for_status()
    return time.perf_counter() - started


def _last_attempt(tracker: TrackerProcess, dag_id: str) -> str:
    headers = {"Authorization": f"Bearer {tracker.token}"}
    runs = requests.get(tracker.url + "/api/v1/dag-runs", params={"dag_id": dag_id, "limit": 1}, headers=headers,
                        timeout=60).json()["items"]
    tree = requests.get(f"{tracker.url}/api/v1/dag-runs/{runs[0]['id']}", headers=headers, timeout=60).json()
    return tree["task_attempts"][0]["id"]


def run_once(db: str | None, args: argparse.Namespace) -> dict[str, Any]:
    scratch = db is not None and db.startswith("postgres")
    if scratch:
        db, _ = scratch_postgres(db)
    try:
        with tempfile.TemporaryDirectory(prefix="runlink-bench-diagnosis-") as tmp:
            url = db or f"sqlite:///{Path(tmp) / 'runlink.db'}"
            tracker = TrackerProcess(Path(tmp) / "home", url).start()
            try:
                dag_id = f"bench_diag_{uuid.uuid4().hex[:8]}"
                fed_s = _feed(tracker, dag_id, args.runs, args.stages, not args.totals_only)
                attempt = _last_attempt(tracker, dag_id)
                session = requests.Session()
                headers = {"Authorization": f"Bearer {tracker.token}"}
                path = f"{tracker.url}/api/v1/task-attempts/{attempt}/diagnosis"
                first = session.get(path, headers=headers, timeout=60)
                first.raise_for_status()
                for _ in range(args.warmup):
                    session.get(path, headers=headers, timeout=60).raise_for_status()
                server, cpu, client = [], [], []
                load_start = os.getloadavg()
                for _ in range(args.requests):
                    started = time.perf_counter()
                    response = session.get(path, headers=headers, timeout=60)
                    client.append((time.perf_counter() - started) * 1000)
                    response.raise_for_status()
                    timing = server_timing(response.headers["Server-Timing"])
                    server.append(timing["diagnosis"])
                    cpu.append(timing["cpu"])
                found = first.json()
            finally:
                tracker.stop()
    finally:
        if scratch:
            drop_postgres(db)
    return {
        "backend": "PostgreSQL" if scratch else "SQLite", "runs": args.runs, "stages_per_run": args.stages,
        "compared_runs": found["history"]["attempts"], "findings": len(found["findings"]),
        "headline": found["headline"], "ingest_s": round(fed_s, 1),
        "server_ms_median": round(statistics.median(server), 1),
        "server_ms_p90": round(statistics.quantiles(server, n=10)[-1], 1) if len(server) > 1 else server[0],
        "client_ms_median": round(statistics.median(client), 1), "cpu_ms_median": round(statistics.median(cpu), 1),
        "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--stages", type=int, default=200, help="stages per run (at least 2)")
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--totals-only", action="store_true", help="stages without call sites and task "
                                                                   "distributions (an older listener)")
    parser.add_argument("--db", action="append", help="sqlite or a PostgreSQL URL (a scratch database is made "
                                                      "on its server); repeat for both (default: sqlite)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results = [run_once(None if db == "sqlite" else db, args) for db in (args.db or ["sqlite"])]
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for r in results:
            print(f"{r['backend']}: {r['runs']} runs x {r['stages_per_run']} stages (compared with "
                  f"{r['compared_runs']}), ingest {r['ingest_s']} s; diagnosis server time median "
                  f"{r['server_ms_median']} ms, p90 {r['server_ms_p90']} ms (its thread's CPU "
                  f"{r['cpu_ms_median']} ms); client median {r['client_ms_median']} ms; load average "
                  f"{r['loadavg_start'][0]:.2f} -> {r['loadavg_end'][0]:.2f}")
            print(f"  {r['headline']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
