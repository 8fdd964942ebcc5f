#!/usr/bin/env python
"""Page latency over a large history (built by scripts/load_history.py): a real `runlink server` on the loaded
database answers the JSON twins of the UI pages, each asked `--repeat` times; the median is reported per page.

Pages: the DAG list (first page, and a page far into it by cursor), a DAG's page (its newest runs, and a page of
older runs by cursor), a run's page (its task grid), the Spark application list (first page and a deep page), the
dataset list, the alert list. The time is the round trip on the loopback interface (an upper bound of the server's
time: it adds the HTTP client's few hundred microseconds).

    .venv/bin/python scripts/bench_history.py --db sqlite:////tmp/history.db
    .venv/bin/python scripts/bench_history.py --db postgresql+psycopg://postgres@127.0.0.1:5432/history
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

TARGET_MS = 300.0


def timed(session: requests.Session, url: str, params: dict | None, repeat: int) -> tuple[float, dict]:
    """Median milliseconds of `repeat` GETs (after one untimed warm-up), and the last answer."""
    answer = session.get(url, params=params, timeout=120)
    answer.raise_for_status()
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        answer = session.get(url, params=params, timeout=120)
        samples.append((time.perf_counter() - began) * 1000)
        answer.raise_for_status()
    return statistics.median(samples), answer.json()


def deep_cursor(session: requests.Session, url: str, pages: int, params: dict | None = None) -> str | None:
    """The cursor `pages` pages into a listing (following `next`)."""
    cursor = None
    for _ in range(pages):
        body = session.get(url, params={**(params or {}), **({"cursor": cursor} if cursor else {})},
                           timeout=120).json()
        cursor = body.get("next")
        if cursor is None:
            break
    return cursor


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", required=True, help="the loaded database's URL")
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--deep", type=int, default=20, help="how many pages in the 'deep page' cases go")
    args = parser.parse_args()

    from runlink.tracker.process import TrackerProcess

    with tempfile.TemporaryDirectory(prefix="runlink-history-") as home:
        tracker = TrackerProcess(Path(home), args.db).start()
        try:
            session = requests.Session()
            session.headers["Authorization"] = f"Bearer {tracker.token}"
            base = tracker.url + "/api/v1/views"
            cases: list[tuple[str, Callable[[], tuple[float, dict]]]] = []
            first_dags = session.get(base + "/dags", timeout=120).json()
            dag_id = first_dags["items"][0]["dag_id"]
            dag = session.get(f"{base}/dags/{dag_id}", params={"limit": 50}, timeout=120).json()
            run_pk = dag["runs"][0]["id"]
            deep_dags = deep_cursor(session, base + "/dags", args.deep // 4 or 1, {"limit": 10})
            deep_runs = deep_cursor(session, f"{base}/dags/{dag_id}", args.deep, {"limit": 50})
            deep_apps = deep_cursor(session, base + "/spark-apps", args.deep)
            cases = [
                ("DAG list", lambda: timed(session, base + "/dags", None, args.repeat)),
                ("DAG list, a deep page", lambda: timed(session, base + "/dags", {"cursor": deep_dags, "limit": 10},
                                                        args.repeat)),
                ("a DAG's page", lambda: timed(session, f"{base}/dags/{dag_id}", None, args.repeat)),
                ("a DAG's page, older runs", lambda: timed(session, f"{base}/dags/{dag_id}",
                                                           {"cursor": deep_runs, "limit": 50}, args.repeat)),
                ("a run's page", lambda: timed(session, f"{base}/dag-runs/{run_pk}", None, args.repeat)),
                ("Spark app list", lambda: timed(session, base + "/spark-apps", None, args.repeat)),
                ("Spark app list, a deep page", lambda: timed(session, base + "/spark-apps", {"cursor": deep_apps},
                                                              args.repeat)),
                ("dataset list", lambda: timed(session, base + "/datasets", None, args.repeat)),
                ("alerts", lambda: timed(session, base + "/alerts", None, args.repeat)),
            ]
            backend = "PostgreSQL" if args.db.startswith("postgres") else "SQLite"
            worst = 0.0
            for name, case in cases:
                median, body = case()
                worst = max(worst, median)
                shown = len(body.get("items") or body.get("runs") or body.get("task_attempts") or [])
                print(f"{backend}: {name}: median {median:.1f} ms ({shown} rows shown)", flush=True)
            print(f"{backend}: slowest median {worst:.1f} ms (target <= {TARGET_MS:.0f} ms): "
                  f"{'ok' if worst <= TARGET_MS else 'OVER'}")
        finally:
            tracker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
