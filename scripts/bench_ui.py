#!/usr/bin/env python
"""Server time to render the UI's heaviest pages, through HTTP against a real tracker with seeded data:

- a DAG run page with 500 task attempts (GET /ui/dag-runs/{id}),
- a Spark application page with 2,000 stages (GET /ui/spark-apps/{id}: timeline SVG + stage table),
- and their JSON twins (/api/v1/views/...).

Target: median <= 300 ms each. The client logs in with the token form (a real session cookie), warms up, then
times N sequential requests; it reports client-side latency (median / p95) and the server's own render time
(the `Server-Timing: render` header: template rendering only, queries excluded).

    .venv/bin/python scripts/bench_ui.py                    # SQLite in a fresh home
    .venv/bin/python scripts/bench_ui.py --db postgresql+psycopg://postgres@127.0.0.1:5432/bench_ui
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
sys.path.insert(0, str(ROOT / "tests"))  # support.* (as under pytest)

from support import seed  # noqa: E402  (the same realistic generators the browser tests use)


def start_server(home: Path, db: str | None) -> tuple[subprocess.Popen, str, str]:
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home, db).start()
    return tracker.process, tracker.url, tracker.token


def login(url: str, token: str) -> requests.Session:
    session = requests.Session()
    form = session.get(url + "/ui/login", timeout=30).text
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    response = session.post(url + "/ui/login", data={"token": token, "csrf": csrf, "next": "/ui/dags"},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text[:500]
    return session


def measure(session: requests.Session, url: str, n: int, warmup: int = 3) -> dict[str, float]:
    for _ in range(warmup):
        assert session.get(url, timeout=120).status_code == 200
    latencies, renders, sizes = [], [], []
    for _ in range(n):
        started = time.perf_counter()
        response = session.get(url, timeout=120)
        latencies.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:300]
        sizes.append(len(response.content))
        timing = response.headers.get("server-timing", "")
        found = re.search(r"render;dur=([\d.]+)", timing)
        if found:
            renders.append(float(found.group(1)))
    latencies.sort()
    return {
        "median_ms": statistics.median(latencies),
        "p95_ms": latencies[min(len(latencies) - 1, int(round(0.95 * (len(latencies) - 1))))],
        "render_median_ms": statistics.median(renders) if renders else float("nan"),
        "kb": statistics.median(sizes) / 1024,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", help="database URL (default: SQLite in a fresh home)")
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--stages", type=int, default=2000)
    parser.add_argument("-n", type=int, default=30, help="timed requests per page")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-ui-"))
    proc, url, token = start_server(home, args.db)
    try:
        logical = datetime(2026, 11, 20, tzinfo=timezone.utc)
        rng = random.Random(5)
        print(f"seeding a DAG run with {args.tasks} tasks and a Spark app with {args.stages} stages ...", flush=True)
        events = seed.dag_run("bench_big", logical, tasks=args.tasks, rng=rng, failed={"join_002"})
        ctx = seed.ctx("bench_big", f"scheduled__{seed.iso(logical)}", logical, "prod", "aggregate_003", 1)
        events += seed.spark_app(ctx, "app-bench-ui", logical + timedelta(minutes=2), stages=args.stages, rng=rng)
        seed.post(url, token, events)
        headers = {"Authorization": f"Bearer {token}"}
        runs = requests.get(url + "/api/v1/dag-runs", params={"dag_id": "bench_big"}, headers=headers,
                            timeout=60).json()["items"]
        run_pk = runs[0]["id"]
        view = requests.get(f"{url}/api/v1/views/dag-runs/{run_pk}", headers=headers, timeout=120).json()
        assert len(view["task_attempts"]) == args.tasks, len(view["task_attempts"])
        (attempt,) = [a for a in view["task_attempts"] if a["task_id"] == "aggregate_003"]
        app_pk = attempt["spark_apps"][0]["id"]
        session = login(url, token)
        pages = [
            (f"DAG run page, {args.tasks} tasks", f"{url}/ui/dag-runs/{run_pk}"),
            (f"Spark app page, {args.stages} stages", f"{url}/ui/spark-apps/{app_pk}"),
        ]
        api = requests.Session()
        api.headers.update(headers)
        twins = [
            (f"JSON /api/v1/views/dag-runs ({args.tasks} tasks)", f"{url}/api/v1/views/dag-runs/{run_pk}"),
            (f"JSON /api/v1/views/spark-apps ({args.stages} stages)", f"{url}/api/v1/views/spark-apps/{app_pk}"),
        ]
        backend = (args.db or "sqlite").split(":", 1)[0]
        print(f"backend {backend}; {args.n} sequential requests each after 3 warm-up; {os.cpu_count()} CPUs, "
              f"load average {os.getloadavg()[0]:.2f}")
        print(f"{'page':48} {'median':>9} {'p95':>9} {'render':>9} {'size':>9}")
        ok = True
        for (name, page_url), client in [*((p, session) for p in pages), *((t, api) for t in twins)]:
            result = measure(client, page_url, args.n)
            print(f"{name:48} {result['median_ms']:7.1f}ms {result['p95_ms']:7.1f}ms "
                  f"{result['render_median_ms']:7.1f}ms {result['kb']:7.0f}KB", flush=True)
            if client is session and result["median_ms"] > 300:
                ok = False
        print("target (median <= 300 ms for both pages): " + ("met" if ok else "NOT met"))
        return 0 if ok else 1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


if __name__ == "__main__":
    sys.exit(main())
