#!/usr/bin/env python
"""Benchmark: what runlink costs a Spark application.

One workload (default 100 SQL queries x 2 stages x 10 tasks = 200 stages, 2,000 tasks; local[2]) run as
separate driver processes, interleaved, `--repeats` times each:

  A  baseline: no runlink
  B  runlink: JVM listeners + PySpark listener, tracker up (a real `runlink server`, SQLite)
  C  Spark's own event log (spark.eventLog.enabled to a temp dir)
  D  runlink with the tracker down (connection refused)

Reported: median workload time (first job to last, inside the driver), the driver JVM's CPU time over the same
span (utime+stime from /proc: far less sensitive than wall time to other work on the machine), median process time
(JVM start to exit, so the flush at application end counts), overhead vs A, runlink vs event log, the driver
log's listener-bus "Dropped" lines, and the driver heap retained by the listener after `--heap-tasks` tasks
(live heap after full GC, runlink minus baseline, and the dev.runlink.* classes in `jcmd GC.class_histogram`).

    .venv/bin/python scripts/bench_spark.py                 # default, < ~10 min on 2 cores
    .venv/bin/python scripts/bench_spark.py --repeats 7 --queries 300 --heap-tasks 300000   # bigger
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))

CHILD = r"""
import json, os, sys, time
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
args = json.loads(sys.argv[1])
builder = SparkSession.builder.master("local[2]").appName("runlink-bench-" + args["variant"])
for k, v in args["conf"].items():
    builder = builder.config(k, v)
spark = builder.getOrCreate()
if args["pyspark_listener"]:
    import runlink.spark
    runlink.spark.track_session(spark)
sc = spark.sparkContext
# warm-up outside the measured span (JIT, class loading): the same in every variant
spark.range(0, 1000, 1, 2).groupBy((F.col("id") % 3).alias("k")).count().collect()
result = {"variant": args["variant"], "pid": os.getpid()}
jvm_pid = sc._jvm.java.lang.ProcessHandle.current().pid()
def jvm_cpu_s():  # utime + stime of the driver JVM (executors included in local mode), from /proc
    fields = open(f"/proc/{jvm_pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
if args["mode"] == "workload":
    cpu0 = jvm_cpu_s()
    py0 = time.process_time()
    start = time.perf_counter()
    for i in range(args["queries"]):
        df = spark.range(0, args["rows"], 1, args["partitions"])
        df.groupBy((F.col("id") % 97).alias("k")).agg(F.sum("id").alias("s")).collect()
    result["workload_s"] = time.perf_counter() - start
    sc._jsc.sc().listenerBus().waitUntilEmpty(600000)  # the listeners' share of work counts too
    result["workload_cpu_s"] = jvm_cpu_s() - cpu0
    result["python_cpu_s"] = time.process_time() - py0
else:  # heap: many cheap tasks, then the live heap after full GCs
    jvm = sc._jvm
    per_job = args["heap_tasks_per_job"]
    jobs = max(1, args["heap_tasks"] // per_job)
    start = time.perf_counter()
    for _ in range(jobs):
        spark.range(0, per_job, 1, per_job).count()
    result["workload_s"] = time.perf_counter() - start
    result["tasks"] = jobs * (per_job + 1)
    sc._jsc.sc().listenerBus().waitUntilEmpty(600000)
    for _ in range(3):
        jvm.java.lang.System.gc()
        time.sleep(0.5)
    result["heap_used"] = jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed()
    import subprocess
    try:
        histo = subprocess.run(["jcmd", str(jvm.java.lang.ProcessHandle.current().pid()), "GC.class_histogram"],
                               capture_output=True, text=True, timeout=300).stdout
    except Exception as exc:
        histo = ""
    runlink_bytes = 0
    classes = []
    for line in histo.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].startswith("dev.runlink"):
            runlink_bytes += int(parts[2])
            classes.append((parts[3], int(parts[1]), int(parts[2])))
    result["runlink_histogram_bytes"] = runlink_bytes
    result["runlink_classes"] = classes
print("BENCH " + json.dumps(result), flush=True)
spark.stop()
"""

DROPPED = re.compile(r"Dropped \d+ events|Dropping event from queue")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_tracker(home: Path) -> tuple[subprocess.Popen, str, str]:
    import requests

    port = free_port()
    env = {**os.environ, "RUNLINK_HOME": str(home)}
    log = open(home / "server.log", "ab")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "runlink", "server", "--host", "127.0.0.1", "--port", str(port), "--home",
         str(home), "--db", f"sqlite:///{home / 'runlink.db'}"], stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if requests.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url, (home / "token").read_text().strip()
        except requests.RequestException:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"tracker did not start: {(home / 'server.log').read_text()[-3000:]}")


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def variant_conf(variant: str, tracker_url: str, down_url: str, eventlog_dir: Path, base: dict) -> dict:
    from runlink.spark import conf as runlink_conf

    conf = dict(base)
    if variant.startswith("runlink"):
        conf.update(runlink_conf(existing=conf, url=down_url if variant == "runlink_down" else tracker_url,
                                 context={}))
    elif variant == "eventlog":
        conf.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(eventlog_dir)})
    return conf


def run_child(variant: str, mode: str, conf: dict, args: argparse.Namespace, env: dict, log_dir: Path,
              index: int) -> dict:
    payload = {
        "variant": variant, "mode": mode, "conf": conf, "queries": args.queries, "rows": args.rows,
        "partitions": args.partitions, "heap_tasks": args.heap_tasks, "heap_tasks_per_job": 1000,
        "pyspark_listener": variant in ("runlink", "runlink_down") and not args.no_pyspark_listener,
    }
    tracker_cpu0 = proc_cpu_s(args.tracker_pid)
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", CHILD, json.dumps(payload)], capture_output=True, text=True,
                         env=env, timeout=3600)
    elapsed = time.perf_counter() - start
    log = res.stdout + res.stderr
    (log_dir / f"{mode}-{index:02d}-{variant}.log").write_text(log)
    if res.returncode != 0 or "BENCH " not in res.stdout:
        raise SystemExit(f"{variant} failed (rc {res.returncode}):\n{log[-5000:]}")
    result = json.loads(res.stdout.split("BENCH ", 1)[1].splitlines()[0])
    result["process_s"] = elapsed
    result["tracker_cpu_s"] = proc_cpu_s(args.tracker_pid) - tracker_cpu0
    result["dropped_lines"] = sum(1 for line in log.splitlines() if DROPPED.search(line))
    result["runlink_log"] = [line for line in log.splitlines() if "runlink:" in line and " WARN " in line][-3:]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=100, help="SQL queries per run (2 stages each)")
    parser.add_argument("--partitions", type=int, default=10, help="tasks per stage")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--heap-tasks", type=int, default=100_000, help="0 skips the heap measurement")
    parser.add_argument("--variants", default="baseline,runlink,eventlog,runlink_down",
                        help="comma-separated; runlink_jvm = JVM listeners only (an unchanged spark-submit app)")
    parser.add_argument("--no-pyspark-listener", action="store_true", help="runlink variants: JVM listeners only")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "bench_spark")
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="runlink-bench-"))
    home = work / "home"
    home.mkdir()
    eventlog_dir = work / "eventlog"
    eventlog_dir.mkdir()
    tracker, url, token = start_tracker(home)
    args.tracker_pid = tracker.pid
    down_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "PYSPARK_"))}
    env.update(RUNLINK_TOKEN=token, RUNLINK_HOME=str(home), PYSPARK_PYTHON=sys.executable)
    base = {
        "spark.sql.shuffle.partitions": str(args.partitions),
        "spark.sql.adaptive.enabled": "false",  # fixed task counts: every query = 2 stages x `partitions` tasks
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.driver.memory": "2g",
    }
    variants = args.variants.split(",")
    load_start = os.getloadavg()  # other work on the machine makes every figure noisier: it is reported
    results: dict[str, list[dict]] = {v: [] for v in variants}
    try:
        index = 0
        for repeat in range(args.repeats):
            shift = repeat % len(variants)  # rotate: no variant always runs first
            order = variants[shift:] + variants[:shift]
            for variant in order:
                conf = variant_conf(variant, url, down_url, eventlog_dir, base)
                result = run_child(variant, "workload", conf, args, env, args.out, index)
                index += 1
                results[variant].append(result)
                print(f"repeat {repeat + 1}/{args.repeats} {variant:13s} workload {result['workload_s']:7.2f}s "
                      f"process {result['process_s']:7.2f}s dropped-lines {result['dropped_lines']}", flush=True)
        heap = {}
        if args.heap_tasks:
            for variant in ("baseline", "runlink"):
                conf = variant_conf(variant, url, down_url, eventlog_dir, base)
                heap[variant] = run_child(variant, "heap", conf, args, env, args.out, index)
                index += 1
                print(f"heap {variant:9s} tasks {heap[variant]['tasks']} used {heap[variant]['heap_used'] / 2**20:.1f}"
                      f" MB, dev.runlink.* {heap[variant]['runlink_histogram_bytes'] / 2**10:.1f} KB "
                      f"({heap[variant]['workload_s']:.1f}s)", flush=True)
    finally:
        tracker.terminate()
        tracker.wait(timeout=30)

    def median(variant: str, key: str) -> float:
        return statistics.median(r[key] for r in results[variant])

    summary = {"config": vars(args) | {"out": str(args.out)}, "load_average_start": load_start,
               "load_average_end": os.getloadavg(), "cpus": os.cpu_count(), "stages_per_run": 2 * args.queries,
               "tasks_per_run": 2 * args.queries * args.partitions, "variants": {}}
    base_w, base_p = median("baseline", "workload_s"), median("baseline", "process_s")
    base_c = median("baseline", "workload_cpu_s")
    for variant in variants:
        w, p = median(variant, "workload_s"), median(variant, "process_s")
        c = median(variant, "workload_cpu_s")
        summary["variants"][variant] = {
            "median_workload_s": round(w, 3), "median_process_s": round(p, 3),
            "median_workload_cpu_s": round(c, 3), "cpu_overhead_pct": round(100 * (c - base_c) / base_c, 2),
            "workload_overhead_pct": round(100 * (w - base_w) / base_w, 2),
            "process_overhead_pct": round(100 * (p - base_p) / base_p, 2),
            "dropped_lines": sum(r["dropped_lines"] for r in results[variant]),
            "median_python_cpu_s": round(median(variant, "python_cpu_s"), 3),
            "median_tracker_cpu_s": round(median(variant, "tracker_cpu_s"), 3),
            "runs": [{k: r[k] for k in ("workload_s", "workload_cpu_s", "python_cpu_s", "tracker_cpu_s", "process_s",
                                        "dropped_lines")}
                     for r in results[variant]],
            "runlink_warnings": results[variant][-1]["runlink_log"],
        }
    v = summary["variants"]
    if "runlink" in v and "eventlog" in v:
        summary["runlink_minus_eventlog_pct"] = round(
            v["runlink"]["workload_overhead_pct"] - v["eventlog"]["workload_overhead_pct"], 2)
        summary["runlink_minus_eventlog_cpu_pct"] = round(
            v["runlink"]["cpu_overhead_pct"] - v["eventlog"]["cpu_overhead_pct"], 2)
    if heap:
        summary["heap"] = {
            "tasks": heap["runlink"]["tasks"],
            "baseline_used_mb": round(heap["baseline"]["heap_used"] / 2**20, 1),
            "runlink_used_mb": round(heap["runlink"]["heap_used"] / 2**20, 1),
            "retained_delta_mb": round((heap["runlink"]["heap_used"] - heap["baseline"]["heap_used"]) / 2**20, 1),
            "runlink_classes_kb": round(heap["runlink"]["runlink_histogram_bytes"] / 2**10, 1),
            "runlink_classes": heap["runlink"]["runlink_classes"][:15],
        }
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print()
    print(f"workload: {summary['stages_per_run']} stages, {summary['tasks_per_run']} tasks per run; "
          f"{args.repeats} interleaved repeats; medians")
    print(f"{'variant':14s} {'workload s':>10s} {'overhead':>9s} {'JVM CPU s':>10s} {'overhead':>9s} "
          f"{'process s':>10s} {'overhead':>9s} {'Dropped':>8s}")
    for variant in variants:
        s = v[variant]
        print(f"{variant:14s} {s['median_workload_s']:10.2f} {s['workload_overhead_pct']:8.2f}% "
              f"{s['median_workload_cpu_s']:10.2f} {s['cpu_overhead_pct']:8.2f}% "
              f"{s['median_process_s']:10.2f} {s['process_overhead_pct']:8.2f}% {s['dropped_lines']:8d} "
              f"py {s['median_python_cpu_s']:.2f}s tracker {s['median_tracker_cpu_s']:.2f}s")
    if "runlink_minus_eventlog_pct" in summary:
        print(f"runlink overhead minus event log overhead: wall {summary['runlink_minus_eventlog_pct']:+.2f} pts, "
              f"JVM CPU {summary['runlink_minus_eventlog_cpu_pct']:+.2f} pts")
    if heap:
        h = summary["heap"]
        print(f"heap after {h['tasks']} tasks: baseline {h['baseline_used_mb']} MB, runlink {h['runlink_used_mb']} MB "
              f"(delta {h['retained_delta_mb']:+.1f} MB); dev.runlink.* live objects {h['runlink_classes_kb']} KB")
    print(f"load average at start {load_start[0]:.1f}, at end {os.getloadavg()[0]:.1f} ({os.cpu_count()} CPUs)")
    print(f"details: {args.out / 'summary.json'} and the driver logs next to it")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
