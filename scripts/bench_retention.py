#!/usr/bin/env python
"""Retention at scale: a database with `--stages` Spark stages over 60 days of runs (bulk-loaded through the real
schema), then `apply_retention(keep 30 days)` while a real `runlink server` ingests; reports the time retention took,
its longest transaction, and ingest events/s without retention and while it runs (medians), side by side.

    .venv/bin/python scripts/bench_retention.py --stages 500000            # SQLite in a temp folder
    .venv/bin/python scripts/bench_retention.py --stages 5000000 --db postgresql+psycopg://postgres@127.0.0.1/bench
"""

from __future__ import annotations

import argparse
import concurrent.futures
import gzip
import json
import os
import statistics
import sys
import tempfile
import threading
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
from runlink.tracker.retention import apply_retention  # noqa: E402
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stages", type=int, default=500_000)
    parser.add_argument("--stages-per-run", type=int, default=50)
    parser.add_argument("--db", help="database URL (default: SQLite in a temp folder)")
    parser.add_argument("--events", type=int, default=20_000, help="events per ingest round")
    parser.add_argument("--rounds", type=int, default=3, help="ingest rounds without retention")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-retention-"))
    url = args.db or f"sqlite:///{home / 'runlink.db'}"
    db = Database(url)
    upgrade(db.engine)
    runs = args.stages // args.stages_per_run
    started = time.perf_counter()
    load(db, runs, args.stages_per_run)
    print(f"loaded {runs:,} runs, {runs * args.stages_per_run:,} stages over 60 days in "
          f"{time.perf_counter() - started:.1f}s ({db.engine.dialect.name})", flush=True)

    with TrackerProcess(home, url, env={"RUNLINK_RETENTION_DAYS": ""}) as server:
        assert server.token is not None
        rounds = [bodies_of(args.events, seed) for seed in range(args.rounds * 4)]
        baseline = [ingest_rate(server.url, server.token, rounds.pop(), args.clients) for _ in range(args.rounds)]
        load_before = os.getloadavg()
        done = threading.Event()
        report: dict = {}

        def retain() -> None:
            report["r"] = apply_retention(db, 30)
            done.set()

        worker = threading.Thread(target=retain)
        worker.start()
        during = []
        while not done.is_set() and rounds:
            during.append(ingest_rate(server.url, server.token, rounds.pop(), args.clients))
        worker.join()
        load_during = os.getloadavg()
    result = report["r"]
    normal, busy = statistics.median(baseline), statistics.median(during) if during else float("nan")
    print(f"retention: {result.deleted['dag_runs']:,} runs, {result.deleted['spark_stages']:,} stages deleted in "
          f"{result.seconds:.1f}s, {result.transactions} transactions, longest {result.longest_transaction_s:.3f}s")
    print(f"ingest events/s   without retention: median {normal:,.0f} of {[round(r) for r in baseline]}")
    print(f"ingest events/s   during retention:  median {busy:,.0f} of {[round(r) for r in during]} "
          f"({busy / normal:.0%} of normal)")
    print(f"load average (1/5/15 min) before retention {load_before}, at its end {load_during}")
    db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
