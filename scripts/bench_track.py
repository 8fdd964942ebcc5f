#!/usr/bin/env python
"""Cost of `@runlink.track` in the caller's thread, side by side in one run: a bare function, the same function
tracked with tracking on (a real tracker), tracked with tracking off (RUNLINK_TRACKING=false), and tracked with
`capture_args=True` (for information).

Why: a tracked function sits on users' code paths; the target is <= 20 us per call with tracking on and ~0 with it
off. A call of a near-empty function is shorter than the clock's resolution, so each sample is a batch of
`--batch` calls timed together (per-call = batch time / batch); the variants take turns batch by batch (their
order rotates every round), so the machine's load at any moment weighs on all of them. Between rounds the client
is flushed (untimed) so the bounded queue never fills and no span takes the drop path; the sender thread sends
to the real `runlink server` (started here on a free port) while we measure, competing for the GIL as in a job.

    .venv/bin/python scripts/bench_track.py [--rounds 200] [--batch 500] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))


def _work(x: int, password: str = "s3cret") -> int:
    return x + 1


def _batch(func: Callable[..., int], n: int) -> float:
    """Per-call microseconds of n calls."""
    clock = time.perf_counter_ns
    start = clock()
    for i in range(n):
        func(i, password="s3cret")
    return (clock() - start) / n / 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--batch", type=int, default=500, help="calls timed together (per-call = time / batch)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-track-"))
    os.environ["RUNLINK_HOME"] = str(home)
    for name in list(os.environ):
        if name.startswith(("AIRFLOW_CTX_", "RUNLINK_TRACKING", "DBND__")):
            del os.environ[name]
    os.environ.update({"AIRFLOW_CTX_DAG_ID": "bench_track", "AIRFLOW_CTX_EXECUTION_DATE": "2026-11-22T00:00:00Z",
                       "AIRFLOW_CTX_TASK_ID": "track", "AIRFLOW_CTX_TRY_NUMBER": "1"})
    from runlink import delivery, track
    from runlink.config import Config
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home).start()
    client = delivery.Client(Config(url=tracker.url, token=tracker.token, home=home))
    noop = delivery.NoopClient()
    tracked = track(_work)
    captured = track(capture_args=True)(_work)
    variants: dict[str, tuple[Callable[..., int], Any]] = {
        "bare": (_work, client), "tracked, tracking on": (tracked, client),
        "tracked, tracking off": (tracked, noop), "tracked + capture_args, on": (captured, client),
    }
    samples: dict[str, list[float]] = {name: [] for name in variants}
    load_before = os.getloadavg()
    try:
        names = list(variants)
        for _round in range(5):  # sender thread started, connection open, caches warm
            for func, active in variants.values():
                delivery.set_client(active)
                _batch(func, args.batch)
            client.flush(30)
        started = time.monotonic()
        for round_no in range(args.rounds):
            shift = round_no % len(names)
            for name in names[shift:] + names[:shift]:
                func, active = variants[name]
                delivery.set_client(active)
                samples[name].append(_batch(func, args.batch))
            client.flush(30)
        wall = time.monotonic() - started
        counters = client.counters()
    finally:
        delivery.set_client(None)
        client.close(10)
        tracker.stop()
    load_after = os.getloadavg()

    def row(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"median_us": statistics.median(ordered), "p10_us": ordered[len(ordered) // 10],
                "p90_us": ordered[(9 * len(ordered)) // 10], "samples": len(ordered)}

    rows = {name: row(values) for name, values in samples.items()}
    bare = rows["bare"]["median_us"]
    on = rows["tracked, tracking on"]["median_us"] - bare
    off = rows["tracked, tracking off"]["median_us"] - bare
    result = {
        "per_call": rows, "overhead_on_us": on, "overhead_off_us": off, "target_on_us": 20.0,
        "meets_target": on <= 20.0, "batch": args.batch, "rounds": args.rounds, "seconds": round(wall, 1),
        "client_counters": counters, "loadavg_before": load_before, "loadavg_after": load_after,
        "cpus": os.cpu_count(), "python": sys.version.split()[0],
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"@runlink.track in the caller's thread: {args.rounds} rounds x {args.batch} calls per variant "
              f"(per-call us; medians of batches)")
        print(f"{'':30}{'median':>10}{'p10':>10}{'p90':>10}")
        for name, r in rows.items():
            print(f"{name:30}{r['median_us']:>8.2f}us{r['p10_us']:>8.2f}us{r['p90_us']:>8.2f}us")
        print(f"overhead over bare (median): on {on:.2f} us, off {off:.2f} us; target on <= 20 us: "
              f"{'met' if result['meets_target'] else 'NOT met'}")
        print(f"load average (1/5/15 min) before {load_before}, after {load_after}; {os.cpu_count()} CPUs")
        print(f"client counters: {counters}")
    return 0 if result["meets_target"] and counters["dropped"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
