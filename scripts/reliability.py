"""Full fault suite with figures: runs tests/reliability at full size, then the security fuzz with more examples,
and prints one table.

    .venv/bin/python scripts/reliability.py [--scale 5] [--spark-apps 20] [--kill-apps 3] [--fuzz-examples 100]
                                            [--json out.json] [-k EXPR]

Scenarios: Python client: tracker SIGKILLed and restarted (SQLite, PostgreSQL), slow + 500s proxy, no disk space
for the spool. Real Spark (spark-submit, local[1], the JVM listener jar): --spark-apps concurrent apps, each with
its own Airflow context, plus a real DAG run (dag.test()) against one tracker; apps across a tracker SIGKILL and
restart (SQLite, PostgreSQL); slow + 500s proxy vs an untracked run of the same app; a ~10 MB plan and a
10,000-column schema (JVM and PySpark listeners, log_dataframe).

Figures per scenario: events sent, acknowledged (Python: delivered or spooled; JVM: in batches the tracker
answered 2xx), lost (acknowledged but not stored: must be 0), duplicated (must be 0), drops counted (dropped,
pending at exit); fuzz cases tried and 5xx seen (must be 0)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: per-scenario figures shown after sent/ack/stored/lost/dup (whichever the scenario has)
NOTES = ("dropped", "dropped_by_client", "spooled", "pending_at_exit", "send_errors", "replayed_later",
         "apps", "linked_correctly", "jobs", "stages", "outage_s", "stored_when_killed", "process_wall_s", "wall_s",
         "untracked_wall_s", "bound_s", "stop_s", "untracked_stop_s", "proxy_500s", "driver_log_undelivered",
         "plan_chars", "jvm_plan_summary_chars", "schema_fields_kept",
         "logged_schema_fields", "rejected", "mode")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=5.0, help="multiplies event counts and durations")
    parser.add_argument("--spark-apps", type=int, default=20, help="concurrent Spark apps (with one DAG run)")
    parser.add_argument("--kill-apps", type=int, default=3, help="Spark apps running across the tracker kill")
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument("--json", help="write all figures here")
    parser.add_argument("-k", dest="select", help="pytest -k expression (run some scenarios only)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runlink-reliability-"))
    report, fuzz = work / "reliability.json", work / "fuzz.json"
    env = {**os.environ, "RUNLINK_RELIABILITY_SCALE": str(args.scale), "RUNLINK_RELIABILITY_REPORT": str(report),
           "RUNLINK_FUZZ_EXAMPLES": str(args.fuzz_examples), "RUNLINK_FUZZ_REPORT": str(fuzz),
           "RUNLINK_RELIABILITY_FULL": "1", "RUNLINK_RELIABILITY_SPARK_APPS": str(args.spark_apps),
           "RUNLINK_RELIABILITY_KILL_APPS": str(args.kill_apps)}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=0", "tests/reliability",
               "tests/security/test_fuzz.py"]
    if args.select:
        command += ["-k", args.select]
    started = time.monotonic()
    rc = subprocess.run(command, cwd=ROOT, env=env).returncode
    figures = {"reliability": json.loads(report.read_text()) if report.exists() else {},
               "fuzz": json.loads(fuzz.read_text()) if fuzz.exists() else {}}
    print(f"\n{'scenario':36s} {'sent':>7s} {'ack':>7s} {'stored':>7s} {'lost':>5s} {'dup':>4s}  notes")
    for name, f in figures["reliability"].items():
        notes = {k: f[k] for k in NOTES if k in f}
        print(f"{name:36s} {f.get('sent', '-')!s:>7s} {f.get('acknowledged', '-')!s:>7s} {f.get('stored', '-')!s:>7s} "
              f"{f.get('lost', '-')!s:>5s} {f.get('duplicated', '-')!s:>4s}  {notes}")
    print(f"fuzz: {figures['fuzz']}")
    print(f"whole run: {time.monotonic() - started:.0f} s, pytest exit code {rc}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
