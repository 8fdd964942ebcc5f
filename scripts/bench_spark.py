#!/usr/bin/env python
"""Benchmark: what runlink costs a Spark application.

The workload: SQL queries of 2 stages x 10 tasks (local[2]). Variants, each against the baseline (no runlink):

  runlink       the JVM listeners (jar, RunlinkSparkListener, RunlinkQueryListener) and the Python call-site
                wrappers of track_session; the tracker up (a real `runlink server`, SQLite, on the same 2 cores)
  eventlog      Spark's own event log (spark.eventLog.enabled, a local directory)
  runlink_down  runlink with the tracker down (connection refused)
  runlink_hang  runlink with a tracker that accepts connections and never answers
  runlink_jvm   (on request) the JVM listeners only: a spark-submit app that does not call track_session

This machine's speed drifts by 10-30% over minutes with nothing else running (a fixed CPU loop shows it), and a
fresh JVM runs this workload about 2x slower for its first ~100 queries (JIT). Both are far larger than the
effect measured, so the main figure comes from one warm driver (`--design toggle`, the default): after a warm-up
it runs blocks of `--block-queries` queries, switching each variant on for one block and off again (listeners
added to and removed from Spark's listener bus, the query listener registered and unregistered, the wrappers put
in and taken out, Spark's EventLoggingListener added to and removed from its queue), every variant block between
two baseline blocks: baseline, runlink, baseline, eventlog, baseline, runlink_down, baseline, ... (the order
rotates). A block's overhead is its time over the mean of its two neighbours; the figure is the median over the
blocks. A block's time includes draining the listener bus, so the listeners' work counts in it.

Block size: by default 20 queries (40 stages, 400 tasks), 40 blocks per variant: 1,600 stages and 16,000 tasks per
variant in all. `--block-queries 100` makes every block the whole 200-stage, 2,000-task workload, but a longer
block follows the drift worse: 12 such blocks per variant (31 min) gave 95% intervals of about +-5 points, against
about +-2.5 for 40 blocks of 20 (20 min).

`--design processes` runs each variant as its own driver process configured at start as users do
(`runlink.spark.conf()` + `track_session`, `spark.eventLog.enabled`), each between two baseline processes, and
also reports process time (JVM start to exit: the flush at application end counts). It is the same comparison
with JVM start-up and warm-up inside, and much noisier.

Reported per variant: wall-time overhead (median, its bootstrap 95% interval, the quartiles of the blocks), driver
JVM CPU overhead (utime+stime from /proc), the Python driver's and the tracker's CPU seconds, the driver log's
listener-bus "Dropped" lines; then the driver heap retained by the listener after `--heap-tasks` tasks (live heap
after full GC, runlink minus baseline, in separate processes, and the dev.runlink.* classes in
`jcmd GC.class_histogram`).

    .venv/bin/python scripts/bench_spark.py                    # toggle: 40 blocks per variant, ~20 min on 2 cores
    .venv/bin/python scripts/bench_spark.py --repeats 120      # ~45 min: a 95% interval of about +-1.3 points
    .venv/bin/python scripts/bench_spark.py --block-queries 100 --repeats 12   # ~31 min, whole-workload blocks
    .venv/bin/python scripts/bench_spark.py --design processes --repeats 5     # ~25 min
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "python"))
from runlink.tracker.process import free_port  # noqa: E402

DRIVER = Path(__file__).with_name("bench_spark_driver.py")
DROPPED = re.compile(r"Dropped \d+ events|Dropping event from queue")


def start_tracker(home: Path) -> tuple[subprocess.Popen, str, str]:
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home, f"sqlite:///{home / 'runlink.db'}").start()
    return tracker.process, tracker.url, tracker.token


class HangingTracker:
    """Accepts connections and never answers: the worst tracker there is."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.conns:
            conn.close()


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Bench:
    """What every driver process shares: the tracker, the conf, the environment, the log folder."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.home = work / "home"
        self.home.mkdir()
        self.eventlog_dir = work / "eventlog"
        self.eventlog_dir.mkdir()
        self.tracker, self.url, token = start_tracker(self.home)
        self.down_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connection refused
        self.hanging = HangingTracker()
        self.urls = {"runlink": self.url, "runlink_jvm": self.url, "runlink_down": self.down_url,
                     "runlink_hang": self.hanging.url}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "PYSPARK_"))}
        env.update(RUNLINK_TOKEN=token, RUNLINK_HOME=str(self.home), PYSPARK_PYTHON=sys.executable)
        self.env = env
        self.base = {
            "spark.sql.shuffle.partitions": str(args.partitions),
            "spark.sql.adaptive.enabled": "false",  # fixed task counts: every query = 2 stages x `partitions` tasks
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": "2g",
        }
        self.runs = 0

    def conf(self, variant: str) -> dict:
        """The driver's conf for a variant configured at start."""
        from runlink.spark import conf as runlink_conf
        from runlink.spark import listener_jar

        conf = dict(self.base)
        if variant == "toggle":  # the jar on the driver; every listener is added later
            conf["spark.jars"] = listener_jar()
        elif variant.startswith("runlink"):
            conf.update(runlink_conf(existing=conf, url=self.urls[variant], context={}))
        elif variant == "eventlog":
            conf.update({"spark.eventLog.enabled": "true", "spark.eventLog.dir": str(self.eventlog_dir)})
        return conf

    def run(self, variant: str, mode: str, **extra: object) -> dict:
        """One driver process; its result, with process time, tracker CPU and the listener-bus drop lines."""
        a = self.args
        payload = {"variant": variant, "mode": mode, "conf": self.conf(variant), "queries": a.queries,
                   "rows": a.rows, "partitions": a.partitions, "heap_tasks": a.heap_tasks, "heap_tasks_per_job": 1000,
                   "track_session": variant in ("runlink", "runlink_down", "runlink_hang"), "urls": self.urls,
                   "tracker_pid": self.tracker.pid,
                   "eventlog_dir": str(self.eventlog_dir), **extra}
        tracker_cpu0 = proc_cpu_s(self.tracker.pid)
        start = time.perf_counter()
        res = subprocess.run([sys.executable, str(DRIVER), json.dumps(payload)], capture_output=True, text=True,
                             env=self.env, timeout=4 * 3600)
        elapsed = time.perf_counter() - start
        log = res.stdout + res.stderr
        (a.out / f"{mode}-{self.runs:02d}-{variant}.log").write_text(log)
        self.runs += 1
        if res.returncode != 0 or "BENCH " not in res.stdout:
            raise SystemExit(f"{variant} failed (rc {res.returncode}):\n{log[-5000:]}")
        result = json.loads(res.stdout.split("BENCH ", 1)[1].splitlines()[0])
        result["process_s"] = elapsed
        result["tracker_cpu_s"] = result.get("tracker_cpu_s", proc_cpu_s(self.tracker.pid) - tracker_cpu0)
        result["dropped_lines"] = sum(1 for line in log.splitlines() if DROPPED.search(line))
        result["runlink_log"] = [line for line in log.splitlines() if "runlink:" in line and " WARN " in line][-3:]
        return result

    def close(self) -> None:
        self.hanging.close()
        self.tracker.terminate()
        self.tracker.wait(timeout=30)


def bracketed(sequence: list[dict], variant: str, key: str) -> list[float]:
    """Each `variant` entry over the mean of the baseline entries just before and after it."""
    ratios = []
    for i in range(1, len(sequence) - 1):
        before, run, after = sequence[i - 1], sequence[i], sequence[i + 1]
        if run["variant"] == variant and before["variant"] == after["variant"] == "baseline":
            ratios.append(run[key] / ((before[key] + after[key]) / 2))
    return ratios


def pct(ratio: float) -> float:
    return round(100 * (ratio - 1), 2)


def quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4) if len(values) > 1 else [values[0]] * 3
    return q[0], q[2]


def median_ci95(values: list[float], resamples: int = 4000) -> tuple[float, float]:
    """A bootstrap 95% interval of the median (fixed seed: the same data gives the same interval)."""
    rng = random.Random(7)
    medians = sorted(statistics.median(rng.choices(values, k=len(values))) for _ in range(resamples))
    return medians[int(0.025 * resamples)], medians[int(0.975 * resamples) - 1]


def summarize(sequence: list[dict], variants: list[str], wall: str, cpu: str, process: str | None) -> dict:
    """Per variant: bracketed overheads (median, quartiles, each), medians of the side measures."""
    out = {}
    for variant in ["baseline", *variants]:
        own = [r for r in sequence if r["variant"] == variant]
        entry = {
            "n": len(own),
            "median_s": round(statistics.median(r[wall] for r in own), 3),
            "median_python_cpu_s": round(statistics.median(r["python_cpu_s"] for r in own), 4),
            "median_tracker_cpu_s": round(statistics.median(r["tracker_cpu_s"] for r in own), 4),
        }
        if variant != "baseline":
            ratios = bracketed(sequence, variant, wall)
            low, high = quartiles(ratios)
            ci_low, ci_high = median_ci95(ratios)
            entry.update({
                "overhead_pct": pct(statistics.median(ratios)),
                "overhead_ci95_pct": [pct(ci_low), pct(ci_high)],
                "overhead_quartiles_pct": [pct(low), pct(high)],
                "overhead_pct_each": [pct(r) for r in ratios],
                "jvm_cpu_overhead_pct": pct(statistics.median(bracketed(sequence, variant, cpu))),
            })
            if process:
                entry["process_overhead_pct"] = pct(statistics.median(bracketed(sequence, variant, process)))
        out[variant] = entry
    return out


def print_table(title: str, table: dict, unit: str) -> None:
    print(title)
    print(f"{'variant':13s} {'n':>3s} {unit:>9s} {'overhead':>9s} {'95% CI':>16s} {'quartiles':>17s} "
          f"{'JVM CPU':>8s} {'process':>8s} {'py CPU s':>9s} {'trk CPU s':>9s}")
    for variant, e in table.items():
        if variant == "baseline":
            cells = f"{'':>9s} {'':>16s} {'':>17s} {'':>8s} {'':>8s}"
        else:
            low, high = e["overhead_quartiles_pct"]
            ci_low, ci_high = e["overhead_ci95_pct"]
            process = f"{e['process_overhead_pct']:7.2f}%" if "process_overhead_pct" in e else f"{'':>8s}"
            cells = (f"{e['overhead_pct']:8.2f}% {ci_low:+6.2f}..{ci_high:+6.2f}% {low:+7.2f}..{high:+6.2f}% "
                     f"{e['jvm_cpu_overhead_pct']:7.2f}% {process}")
        print(f"{variant:13s} {e['n']:3d} {e['median_s']:9.3f} {cells} {e['median_python_cpu_s']:9.3f} "
              f"{e['median_tracker_cpu_s']:9.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--design", choices=("toggle", "processes"), default="toggle")
    parser.add_argument("--repeats", type=int, default=40, help="blocks (toggle) or processes per variant")
    parser.add_argument("--block-queries", type=int, default=20,
                        help="toggle: queries per block (2 stages each; 100 = the whole 2,000-task workload)")
    parser.add_argument("--warmup-queries", type=int, default=150, help="toggle: queries before the first block")
    parser.add_argument("--queries", type=int, default=100, help="processes: SQL queries per run (2 stages each)")
    parser.add_argument("--partitions", type=int, default=10, help="tasks per stage")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--heap-tasks", type=int, default=100_000, help="0 skips the heap measurement")
    parser.add_argument("--variants", default="runlink,eventlog,runlink_down,runlink_hang",
                        help="compared with the baseline; also runlink_jvm (JVM listeners, no Python wrappers)")
    parser.add_argument("--out", type=Path, default=ROOT / "test-artifacts" / "bench_spark")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    variants = args.variants.split(",")
    work = Path(tempfile.mkdtemp(prefix="runlink-bench-"))
    load_start = os.getloadavg()  # other work on the machine makes every figure noisier: it is reported
    bench = Bench(args, work)
    summary: dict = {"config": vars(args) | {"out": str(args.out)}, "load_average_start": load_start,
                     "cpus": os.cpu_count()}
    heap = {}
    try:
        if args.design == "toggle":
            result = bench.run("toggle", "toggle", variants=variants, repeats=args.repeats,
                               block_queries=args.block_queries, warmup_queries=args.warmup_queries)
            sequence = result["blocks"]
            summary.update(queries_per_block=args.block_queries, dropped_lines=result["dropped_lines"],
                           variants=summarize(sequence, variants, "wall_s", "jvm_cpu_s", None), blocks=sequence)
        else:
            plan = ["baseline"]
            for repeat in range(args.repeats):
                shift = repeat % len(variants)
                for variant in variants[shift:] + variants[:shift]:
                    plan += [variant, "baseline"]
            sequence = []
            for index, variant in enumerate(plan):
                result = bench.run(variant, "workload")
                sequence.append(result)
                print(f"run {index + 1:3d}/{len(plan)} {variant:13s} workload {result['workload_s']:7.2f}s "
                      f"process {result['process_s']:7.2f}s dropped-lines {result['dropped_lines']}", flush=True)
            summary.update(queries_per_run=args.queries, dropped_lines=sum(r["dropped_lines"] for r in sequence),
                           variants=summarize(sequence, variants, "workload_s", "workload_cpu_s", "process_s"),
                           runs=[{k: r[k] for k in ("variant", "workload_s", "workload_cpu_s", "python_cpu_s",
                                                    "tracker_cpu_s", "process_s", "dropped_lines")}
                                 for r in sequence])
        if args.heap_tasks:
            for variant in ("baseline", "runlink"):
                heap[variant] = bench.run(variant, "heap")
                print(f"heap {variant:9s} tasks {heap[variant]['tasks']} used {heap[variant]['heap_used'] / 2**20:.1f}"
                      f" MB, dev.runlink.* {heap[variant]['runlink_histogram_bytes'] / 2**10:.1f} KB "
                      f"({heap[variant]['workload_s']:.1f}s)", flush=True)
    finally:
        bench.close()

    table = summary["variants"]
    if "runlink" in table and "eventlog" in table:
        summary["runlink_minus_eventlog_pct"] = round(table["runlink"]["overhead_pct"]
                                                      - table["eventlog"]["overhead_pct"], 2)
    if heap:
        summary["heap"] = {
            "tasks": heap["runlink"]["tasks"],
            "baseline_used_mb": round(heap["baseline"]["heap_used"] / 2**20, 1),
            "runlink_used_mb": round(heap["runlink"]["heap_used"] / 2**20, 1),
            "retained_delta_mb": round((heap["runlink"]["heap_used"] - heap["baseline"]["heap_used"]) / 2**20, 1),
            "runlink_classes_kb": round(heap["runlink"]["runlink_histogram_bytes"] / 2**10, 1),
            "runlink_classes": heap["runlink"]["runlink_classes"][:15],
        }
    summary["load_average_end"] = os.getloadavg()
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    per = args.block_queries if args.design == "toggle" else args.queries
    n = table[variants[0]]["n"]
    print()
    print_table(f"design {args.design}: {n} x {per} queries = {n * per * 2} stages, {n * per * 2 * args.partitions} "
                f"tasks per variant; each against its two neighbouring baselines; median over them",
                table, "block s" if args.design == "toggle" else "run s")
    print(f"listener-bus 'Dropped' lines in the driver logs: {summary['dropped_lines']}")
    if "runlink_minus_eventlog_pct" in summary:
        print(f"runlink overhead minus event log overhead: {summary['runlink_minus_eventlog_pct']:+.2f} points")
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
