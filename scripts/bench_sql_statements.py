#!/usr/bin/env python
"""Per-statement cost of recording an Airflow SQL hook's statements in the task process (issue 23).

What is timed: `DbApiHook._run_command` (the call every DbApiHook-based provider makes per statement) on a real
DB-API driver (sqlite3, in memory, so the database's own time is small and the difference shows) for a 2 KB
statement, tracking off (the method as Airflow ships it) and tracking on (patched by `runlink.airflow.sql.install`
as inside a tracked task, events going to a real `runlink server` started here, whose sender thread batches and
POSTs while we measure). Rounds of on and off alternate so the machine's other load weighs on both sides.
Target: <= 1 ms median overhead per statement. The tables are parsed by the tracker at ingest, not in the task;
the parser's cost per statement there is printed too (sqlglot, the same 2 KB statement, cache defeated).

    .venv/bin/python scripts/bench_sql_statements.py [--statements 20000] [--round 1000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))


def statement_2kb() -> str:
    """A realistic 2 KB statement: an INSERT ... SELECT with joins, CASE expressions and literals (as many
    columns as fit in 2048 bytes, padded with spaces to exactly 2048)."""

    def build(n: int) -> str:
        columns = ",\n  ".join(
            f"CASE WHEN s.amount_{i} > {i * 10} THEN 'band_{i}' ELSE coalesce(d.label_{i}, 'none') END"
            for i in range(n))
        return (f"INSERT INTO sales_bands (id, region, {', '.join(f'band_{i}' for i in range(n))})\n"
                f"SELECT s.id, r.name,\n  {columns}\nFROM sales s JOIN regions r ON r.id = s.region_id\n"
                "LEFT JOIN labels d ON d.id = s.id WHERE s.day >= '2026-12-01' AND s.password_hint IS NULL")

    n = 1
    while len(build(n + 1)) <= 2048:
        n += 1
    return build(n).ljust(2048)


def setup_db() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    cols = ", ".join(f"amount_{i} REAL" for i in range(20))
    conn.execute(f"CREATE TABLE sales (id INTEGER, region_id INTEGER, day TEXT, password_hint TEXT, {cols})")
    conn.execute("CREATE TABLE regions (id INTEGER, name TEXT)")
    conn.execute(f"CREATE TABLE labels (id INTEGER, {', '.join(f'label_{i} TEXT' for i in range(20))})")
    bands = ", ".join(f"band_{i} TEXT" for i in range(20))
    conn.execute(f"CREATE TABLE sales_bands (id INTEGER, region TEXT, {bands})")
    return conn


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return {"median_us": pick(0.5), "p90_us": pick(0.9), "p99_us": pick(0.99),
            "mean_us": statistics.fmean(ordered) / 1000, "statements": len(ordered)}


def sender_side_cost(sql: str, raw: dict[str, str], n: int = 500) -> list[int]:
    """What the delivery client's sender thread spends per statement event (masking the text, the envelope): CPU
    the process spends off the task's thread."""
    from runlink import delivery
    from runlink.airflow.sql.recorder import StatementRecorder, Target

    class Keep:
        def __init__(self) -> None:
            self.events: list = []

        def emit(self, event: object) -> bool:
            self.events.append(event)
            return True

    keep = Keep()
    previous = delivery.set_client(keep)  # type: ignore[arg-type]
    try:
        recorder = StatementRecorder(raw)
        for i in range(n):
            recorder.record(Target("sqlite", "localhost"), sql + f" -- {i}", time.time(), 0.001, rows=1)
    finally:
        delivery.set_client(previous)
    samples = []
    for event in keep.events:
        start = time.perf_counter_ns()
        dict(event)
        samples.append(time.perf_counter_ns() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=20000, help="statements per side")
    parser.add_argument("--round", type=int, default=1000, help="statements per round (sides alternate)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from runlink.tracker.process import TrackerProcess

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-sql-"))
    tracker = TrackerProcess(home / "tracker").start()
    os.environ.update(RUNLINK_URL=tracker.url, RUNLINK_TOKEN=tracker.token, RUNLINK_HOME=str(home / "client"))
    try:
        return run(args, tracker)
    finally:
        tracker.stop()


def run(args: argparse.Namespace, tracker: object) -> int:
    from airflow.providers.common.sql.hooks.sql import DbApiHook

    from runlink import delivery
    from runlink.airflow.settings import AirflowSettings
    from runlink.airflow.sql import install
    from runlink.tracker.sql_tables import _tables

    class SqliteBenchHook(DbApiHook):
        conn_name_attr = "bench_conn_id"
        conn_type = "sqlite"

    from airflow.models.connection import Connection

    hook = SqliteBenchHook(connection=Connection(conn_id="bench", conn_type="sqlite", host="localhost"), log_sql=False)
    db = setup_db()
    cursor = db.cursor()
    sql = statement_2kb()
    raw = {"dag_id": "bench_sql", "dag_run_id": "manual__bench", "task_id": "load", "try_number": "1"}
    settings = AirflowSettings(uid="bench")
    client = delivery.get_client()
    clock = time.perf_counter_ns
    samples: dict[str, list[int]] = {"off": [], "on": []}
    for warm in ("off", "on"):  # a warm-up round of each (imports, caches), not counted
        undo = install(raw, settings) if warm == "on" else None
        for _ in range(200):
            hook._run_command(cursor, sql, None)
        if undo:
            undo()
    done = 0
    while done < args.statements:
        n = min(args.round, args.statements - done)
        for side in ("off", "on"):
            undo = install(raw, settings) if side == "on" else None
            out = samples[side]
            for _ in range(n):
                start = clock()
                hook._run_command(cursor, sql, None)
                out.append(clock() - start)
            if undo:
                undo()
            client.flush(30)  # not timed: the queue never fills, no call takes the drop path
        done += n
    built = sender_side_cost(sql, raw)
    parse = []
    for i in range(200):
        start = clock()
        _tables(sql + f" /* {i} */", "postgres")  # a new text each time: the parser's lru cache never answers
        parse.append(clock() - start)
    off, on = summary(samples["off"]), summary(samples["on"])
    result = {
        "statement_bytes": len(sql.encode()), "off": off, "on": on,
        "overhead_median_us": round(on["median_us"] - off["median_us"], 1),
        "overhead_mean_us": round(on["mean_us"] - off["mean_us"], 1),
        "sender_build_median_us": summary(built)["median_us"],
        "tracker_parse_median_us": summary(parse)["median_us"],
        "events_sent": client.counters().get("sent") if hasattr(client, "counters") else None,
        "loadavg": os.getloadavg(), "cpus": os.cpu_count(),
    }
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print(f"2 KB statement ({result['statement_bytes']} bytes), {off['statements']} statements per side, "
              f"load {result['loadavg'][0]:.2f} on {result['cpus']} CPUs")
        for side, s in (("tracking off", off), ("tracking on", on)):
            print(f"  {side:13} median {s['median_us']:8.1f} us  p90 {s['p90_us']:8.1f}  p99 {s['p99_us']:8.1f}  "
                  f"mean {s['mean_us']:8.1f}")
        print(f"  overhead per statement: median {result['overhead_median_us']} us, "
              f"mean {result['overhead_mean_us']} us (target <= 1000 us)")
        print(f"  sender thread (off the task's thread), masking and building the event: median "
              f"{result['sender_build_median_us']:.0f} us per statement")
        print(f"  tracker side, sqlglot tables per statement: median {result['tracker_parse_median_us']:.0f} us")
    return 0 if result["overhead_median_us"] <= 1000 else 1


if __name__ == "__main__":
    sys.exit(main())
