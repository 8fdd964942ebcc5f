"""Benchmark: a Structured Streaming query of 10,000 micro-batches -> events sent and listener heap, both bounded.

    .venv/bin/python scripts/bench_streaming.py [--batches 10000] [--interval 30] [--spacing-ms 100] [--repeat 5]

A real 10,000-batch query takes far too long on this shared 2-core machine, so the JVM side
(`jvm-listener/src/test/java/dev/runlink/spark/StreamingBench.java`) drives the real `RunlinkStreamingListener`
with Spark's own QueryProgressEvent objects, one batch every `--spacing-ms` of Spark time, through the real
delivery to a transport that counts what it is sent. Each repeat is a fresh JVM; the figures are medians.
The JUnit build (`scripts/build-jar.sh --test`) compiles the harness.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HARNESS = "dev.runlink.spark.StreamingBench"


def spark_jars() -> str:
    import pyspark

    return os.path.join(os.path.dirname(pyspark.__file__), "jars")


def build() -> None:
    res = subprocess.run(["flock", "/tmp/jar-build.lock", "bash", "scripts/build-jar.sh", "--test"], cwd=ROOT,
                         capture_output=True, text=True)
    if res.returncode != 0:
        sys.exit(f"bench_streaming: the jar build failed: {res.stderr.strip().splitlines()[-1:]}")


def run_once(batches: int, interval: int, spacing_ms: int) -> dict:
    classes = ROOT / "jvm-listener" / "build" / "classes" / "java"
    classpath = os.pathsep.join([str(classes / "test"), str(classes / "main"), os.path.join(spark_jars(), "*")])
    res = subprocess.run(["java", "-Xmx512m", "-cp", classpath, HARNESS, str(batches), str(interval),
                          str(spacing_ms)], capture_output=True, text=True, timeout=600)
    line = next((ln for ln in res.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if res.returncode != 0 or line is None:
        sys.exit(f"bench_streaming: the harness failed:\n{res.stderr[-2000:]}")
    return json.loads(line[len("BENCH "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=10_000)
    parser.add_argument("--interval", type=int, default=30, help="spark.runlink.streaming.intervalSeconds")
    parser.add_argument("--spacing-ms", type=int, default=100, help="Spark time between two batches")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    build()
    runs = [run_once(args.batches, args.interval, args.spacing_ms) for _ in range(args.repeat)]
    first = runs[0]
    print(f"query: {args.batches} micro-batches, one per {args.spacing_ms} ms of Spark time "
          f"({first['query_seconds']} s), interval {args.interval} s; {args.repeat} runs, each a fresh JVM")
    print(f"events sent per run: {[r['events_sent'] for r in runs]} by type {first['events_by_type']}")
    print(f"  bytes sent (gzip): {first['bytes_sent_gzip']}")
    per = first["batches_per_progress_event"]
    print(f"  batches per progress event: {len(per)} events, min {min(per)}, median {statistics.median(per)}, "
          f"max {max(per)}; sum {sum(per)} (+ the end event's partial interval)")
    for key in ("heap_before_kb", "heap_at_10pct_kb", "heap_at_100pct_kb", "heap_after_end_kb",
                "growth_10pct_to_100pct_kb", "callback_cpu_us_per_batch"):
        values = [r[key] for r in runs]
        print(f"{key}: median {statistics.median(values):.1f} (runs: {', '.join(f'{v:.0f}' for v in values)})")
    print(f"load average (1, 5, 15 min): {', '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
