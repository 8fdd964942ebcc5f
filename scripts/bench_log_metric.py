#!/usr/bin/env python
"""Cost of `runlink.log_metric` in the caller's thread: tracking on (real tracker) vs tracking off.

Why: the SDK sits on users' hot paths; the target is <= 20 us median per call. The tracking-on run talks
to a real `runlink server` (started here on a free port with a throw-away home, unless --url/--token are
given), so the background sender really batches, validates, gzips and POSTs while we measure, and competes
for the GIL as it would in a job. Calls are timed one by one (perf_counter_ns) in rounds; between rounds
the client is flushed (not timed) so the bounded queue never fills and no call takes the drop path.

    .venv/bin/python scripts/bench_log_metric.py [--calls 100000] [--round 5000] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))


def start_tracker(home: Path) -> tuple[subprocess.Popen, str, str]:
    """A real tracker on a free port; returns (process, url, admin token)."""
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home).start()
    return tracker.process, tracker.url, tracker.token


def measure(calls: int, round_size: int, flush) -> list[int]:  # noqa: ANN001
    from runlink import log_metric

    samples: list[int] = []
    clock = time.perf_counter_ns
    done = 0
    while done < calls:
        n = min(round_size, calls - done)
        for i in range(n):
            start = clock()
            log_metric("bench.value", i)
            samples.append(clock() - start)
        done += n
        flush()
    return samples


def summary(samples: list[int]) -> dict[str, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000  # noqa: E731
    return {"median_us": pick(0.5), "p90_us": pick(0.9), "p99_us": pick(0.99),
            "mean_us": statistics.fmean(ordered) / 1000, "max_us": ordered[-1] / 1000, "calls": len(ordered)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--round", type=int, default=5_000, help="calls between (untimed) flushes")
    parser.add_argument("--url", help="an existing tracker (default: start one)")
    parser.add_argument("--token")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    home = Path(tempfile.mkdtemp(prefix="runlink-bench-"))
    os.environ["RUNLINK_HOME"] = str(home)
    for name in list(os.environ):
        if name.startswith("AIRFLOW_CTX_"):
            del os.environ[name]
    os.environ.update({"AIRFLOW_CTX_DAG_ID": "bench", "AIRFLOW_CTX_EXECUTION_DATE": "2026-11-22T00:00:00Z",
                       "AIRFLOW_CTX_TASK_ID": "log_metric", "AIRFLOW_CTX_TRY_NUMBER": "1"})
    server = None
    if args.url:
        url, token = args.url, args.token
    else:
        server, url, token = start_tracker(home)
    try:
        from runlink import delivery

        # baseline: tracking off (the no-op client)
        os.environ["RUNLINK_TRACKING"] = "false"
        delivery.set_client(None)
        off = summary(measure(args.calls, args.round, lambda: None))

        # tracking on, against the real tracker
        os.environ.update(RUNLINK_TRACKING="true", RUNLINK_URL=url, RUNLINK_TOKEN=token or "")
        delivery.set_client(None)
        client = delivery.get_client()
        assert isinstance(client, delivery.Client), client
        measure(2_000, 2_000, lambda: client.flush(30))  # warm-up: thread started, connection open
        start = time.monotonic()
        on = summary(measure(args.calls, args.round, lambda: client.flush(30)))
        wall = time.monotonic() - start
        counters = client.counters()
        result = {
            "tracking_on": on, "tracking_off": off,
            "ratio_median": on["median_us"] / off["median_us"] if off["median_us"] else None,
            "overhead_median_us": on["median_us"] - off["median_us"],
            "target_median_us": 20.0, "meets_target": on["median_us"] <= 20.0,
            "client_counters": counters, "delivered_per_s": round(counters["sent"] / wall),
            "python": sys.version.split()[0], "cpus": os.cpu_count(),
        }
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"log_metric cost in the caller's thread ({on['calls']} calls each, rounds of {args.round})")
            print(f"{'':14}{'median':>10}{'p90':>10}{'p99':>10}{'mean':>10}{'max':>12}")
            for name, row in (("tracking on", on), ("tracking off", off)):
                print(f"{name:14}{row['median_us']:>8.2f}us{row['p90_us']:>8.2f}us{row['p99_us']:>8.2f}us"
                      f"{row['mean_us']:>8.2f}us{row['max_us']:>10.1f}us")
            print(f"ratio on/off (median): {result['ratio_median']:.1f}x; "
                  f"overhead {result['overhead_median_us']:.2f} us; "
                  f"target <= 20 us median: {'met' if result['meets_target'] else 'NOT met'}")
            print(f"client counters: {counters}  (sent {result['delivered_per_s']}/s incl. flush waits)")
        return 0 if result["meets_target"] and counters["dropped"] == 0 else 1
    finally:
        try:
            delivery.get_client().close(5)
        except Exception:
            pass
        if server is not None:
            server.terminate()
            server.wait(timeout=15)


if __name__ == "__main__":
    sys.exit(main())
