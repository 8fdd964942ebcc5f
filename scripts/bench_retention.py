#!/usr/bin/env python
"""Retention at scale: a database with `--stages` Spark stages over 60 days of runs (bulk-loaded through the real
schema), then `runlink retention` from 60 down to 30 days kept, in passes, while a real `runlink server` ingests;
reports the time retention took, its longest transaction, and ingest events/s without retention and while it runs
(medians of rounds interleaved in one run: one without, then those during a pass), with the load average.

    .venv/bin/python scripts/bench_retention.py --stages 500000            # SQLite in a temp folder
    .venv/bin/python scripts/bench_retention.py --stages 5000000 --db postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "scripts"))

from bench_ingest import build_events  # noqa: E402

from runlink.instants import format_instant  # noqa: E402
from runlink.tracker.db import Database, upgrade  # noqa: E402
from runlink.tracker.models import STAGE_METRICS  # noqa: E402
from runlink.tracker.process import TrackerProcess  # noqa: E402
from runlink.tracker.sqlutil import run  # noqa: E402

ROWS_PER_TRANSACTION = 50_000


def load(db: Database, runs: int, stages_per_run: int, days: int = 60) -> None:
    """`runs` runs spread evenly over `days`, each: one attempt, two contexts, one Spark app with its stages."""
    now = datetime.now(timezone.utc)
    stage_cols = ("spark_app_pk", "stage_id", "attempt_id", "name", "num_tasks", "status", "stamp", *STAGE_METRICS)
    pending: dict[str, list[tuple]] = {"dag_runs": [], "task_attempts": [], "contexts": [], "spark_apps": [],
                                       "spark_stages": []}
    sql = {
        "dag_runs": "INSERT INTO dag_runs (id, dag_id, canonical_key, run_id, logical_date, logical_day, placeholder, "
                    "ambiguous, synthetic, state, sort_key, end_date) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "task_attempts": "INSERT INTO task_attempts (id, run_pk, task_id, map_index, try_number, placeholder, state) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
        "contexts": "INSERT INTO contexts (id, dag_id, dag_run_id, date_only, task_id, map_index, synthetic, run_pk, "
                    "attempt_pk, ambiguous) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        "spark_apps": "INSERT INTO spark_apps (id, app_id, context_id, state) VALUES (?, ?, ?, ?)",
        "spark_stages": f"INSERT INTO spark_stages ({', '.join(stage_cols)}) "
                        f"VALUES ({', '.join('?' * len(stage_cols))})",
    }

    def flush() -> None:
        with db.write() as conn:
            for table, rows in pending.items():
                if rows:
                    run(conn, sql[table], rows)
                    rows.clear()

    metrics = tuple(range(len(STAGE_METRICS)))
    for n in range(runs):
        when = format_instant(now - timedelta(days=days * n / runs))
        run_pk, attempt_pk, ctx_run, ctx_task, app = (str(uuid.uuid4()) for _ in range(5))
        dag_id = f"dag_{n % 200}"
        pending["dag_runs"].append((run_pk, dag_id, f"{dag_id}|{n}", f"run_{n}", when, when[:10], False, False, False,
                                    "success", when, when))
        pending["task_attempts"].append((attempt_pk, run_pk, "t", -1, 1, False, "success"))
        pending["contexts"].append((ctx_run, dag_id, f"run_{n}", False, None, -1, False, run_pk, None, False))
        pending["contexts"].append((ctx_task, dag_id, f"run_{n}", False, "t", -1, False, run_pk, attempt_pk, False))
        pending["spark_apps"].append((app, f"app-{n}", ctx_task, "succeeded"))
        pending["spark_stages"].extend((app, s, 0, f"stage {s}", 4, "succeeded", when, *metrics)
                                       for s in range(stages_per_run))
        if len(pending["spark_stages"]) >= ROWS_PER_TRANSACTION:
            flush()
    flush()


def ingest_rate(url: str, token: str, bodies: list[bytes], clients: int) -> float:
    """Events/s posting every body once (500 events each, gzip) from `clients` threads."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"}
    session = requests.Session()

    def post(body: bytes) -> None:
        answer = session.post(url + "/api/v1/events", data=body, headers=headers, timeout=120)
        assert answer.status_code == 202, answer.text

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(post, bodies))
    return len(bodies) * 500 / (time.perf_counter() - started)


def bodies_of(n_events: int, seed: int) -> list[bytes]:
    """bench_ingest's mix as new runs: fresh event ids, and its October 2026 runs moved into this month (inside
    the window retention keeps, so it deletes none of what is being ingested)."""
    events = build_events(n_events, seed)
    for e in events:
        e["id"] = str(uuid.uuid4())
    month = datetime.now(timezone.utc).strftime("%Y-%m-")
    text = json.dumps({"events": events}).replace("2026-10-", month)
    events = json.loads(text)["events"]
    return [gzip.compress(json.dumps({"events": events[i:i + 500]}).encode()) for i in range(0, len(events), 500)]


def retention_slice(url: str, keep_days: float) -> subprocess.Popen:
    """`runlink retention` in its own process (as a server's schedule or a person would run it)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
    return subprocess.Popen([sys.executable, "-m", "runlink", "retention", "--keep-days", str(keep_days), "--db", url],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def slice_figures(output: str) -> tuple[int, int, float, float]:
    """(runs, stages, seconds, longest transaction s) from `runlink retention`'s report."""
    runs = int(re.search(r"dag_runs\s+([\d,]+)", output).group(1).replace(",", "")) if "dag_runs" in output else 0
    stages = int(re.search(r"spark_stages\s+([\d,]+)", output).group(1).replace(",", "")) \
        if "spark_stages" in output else 0
    timing = re.search(r"transactions in ([\d.]+)s \(longest (\d+) ms\)", output)
    assert timing, output
    return runs, stages, float(timing.group(1)), int(timing.group(2)) / 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=500_000)
    parser.add_argument("--stages-per-run", type=int, default=50)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--events", type=int, default=10_000, help="events per ingest round")
    parser.add_argument("--slices", type=int, default=6, help="retention runs as this many passes (60 -> 30 days)")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-retention-"))
    url = args.db or f"sqlite:///{home / 'runlink.db'}"
    db = Database(url)
    upgrade(db.engine)
    runs = args.stages // args.stages_per_run
    started = time.perf_counter()
    load(db, runs, args.stages_per_run)
    with db.write() as conn:  # statistics, as autovacuum keeps them (without them the deletes' IN lists scan)
        conn.exec_driver_sql("ANALYZE")
    db.dispose()
    print(f"loaded {runs:,} runs, {runs * args.stages_per_run:,} stages over 60 days in "
          f"{time.perf_counter() - started:.1f}s ({url.split(':', 1)[0]})", flush=True)

    baseline: list[float] = []
    during: list[float] = []
    totals = [0, 0, 0.0, 0.0]
    seed = 0
    loads = [os.getloadavg()]
    with TrackerProcess(home, url, env={"RUNLINK_RETENTION_DAYS": ""}) as server:
        assert server.token is not None
        ingest_rate(server.url, server.token, bodies_of(args.events, 0), args.clients)  # warm-up, not counted
        # interleaved, so the machine's other load weighs on both sides alike: a round without retention, then
        # rounds while one slice of retention (a few days of runs) runs in its own process
        for n in range(args.slices):
            seed += 1
            baseline.append(ingest_rate(server.url, server.token, bodies_of(args.events, seed), args.clients))
            keep = 60 - 30 * (n + 1) / args.slices
            process = retention_slice(url, keep)
            while process.poll() is None:  # rounds through the whole pass (each built before its clock starts)
                seed += 1
                bodies = bodies_of(args.events, seed)
                if process.poll() is None:
                    during.append(ingest_rate(server.url, server.token, bodies, args.clients))
            output = process.communicate(timeout=1800)[0]
            assert process.returncode == 0, output
            figures = slice_figures(output)
            totals = [totals[0] + figures[0], totals[1] + figures[1], totals[2] + figures[2],
                      max(totals[3], figures[3])]
            loads.append(os.getloadavg())
    normal, busy = statistics.median(baseline), statistics.median(during)
    print(f"retention: {totals[0]:,} runs, {totals[1]:,} stages deleted in {totals[2]:.1f}s over {args.slices} "
          f"passes of `runlink retention`; longest transaction {totals[3]:.3f}s")
    print(f"ingest events/s   without retention: median {normal:,.0f} of {[round(r) for r in baseline]}")
    print(f"ingest events/s   during retention:  median {busy:,.0f} of {[round(r) for r in during]} "
          f"({busy / normal:.0%} of normal)")
    print(f"load average (1 min) before and after each pass: {[round(load[0], 1) for load in loads]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
