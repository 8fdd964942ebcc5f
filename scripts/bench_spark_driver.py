"""The Spark driver program of scripts/bench_spark.py (run as its own process: one SparkContext per JVM).

    python scripts/bench_spark_driver.py '{"mode": "toggle" | "workload" | "heap", ...}'

Prints one line `BENCH {json}` with what it measured.

- `toggle`: one warm driver JVM runs the workload in blocks and switches runlink (and the other variants) on and
  off between blocks: the JVM listeners are added to and removed from the listener bus, the query listener
  registered and unregistered, the Python call-site wrappers put in and taken out, Spark's EventLoggingListener
  added to and removed from its queue. Every variant block sits between two baseline blocks.
- `workload`: one variant, configured at start like a user would (conf / track_session), the workload once.
- `heap`: many cheap tasks, then the live heap after full GCs and the dev.runlink.* classes in the histogram.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

BENCH_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(BENCH_ROOT, "python"))


def proc_cpu_s(pid: int) -> float:
    """utime + stime of a process (the driver JVM: executors included in local mode), from /proc."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def query(spark: Any, args: dict) -> None:
    """One SQL query of the workload: 2 stages of `partitions` tasks."""
    df = spark.range(0, args["rows"], 1, args["partitions"])
    df.groupBy((F.col("id") % 97).alias("k")).agg(F.sum("id").alias("s")).collect()


class Wrappers:
    """runlink's Python call-site wrappers, put on and taken off PySpark's classes."""

    def __init__(self, bridge: Any) -> None:
        from runlink.spark import pyspark_listener

        targets = [(cls, name) for cls, names in pyspark_listener._classic_classes() for name in names]
        self.plain = {key: key[0].__dict__.get(key[1]) for key in targets}
        pyspark_listener.install_callsite_capture(bridge)
        self.wrapped = {key: key[0].__dict__.get(key[1]) for key in targets}
        self.set(False)

    def set(self, on: bool) -> None:
        for (cls, name), method in (self.wrapped if on else self.plain).items():
            if method is not None:
                setattr(cls, name, method)
            elif name in cls.__dict__:
                delattr(cls, name)  # the plain method is inherited


class Toggles:
    """Each variant's switch in one running application."""

    def __init__(self, spark: Any, args: dict) -> None:
        self.spark = spark
        sc = spark.sparkContext
        self.jvm = sc._jvm
        self.sc = sc._jsc.sc()
        self.bus = self.sc.listenerBus()
        bridge = self.jvm.dev.runlink.spark.PythonBridge
        self.wrappers = Wrappers(bridge)
        self.listeners = {}
        for variant, url in args["urls"].items():
            conf = self.sc.conf().clone().set("spark.runlink.url", url)
            self.listeners[variant] = (self.jvm.dev.runlink.spark.RunlinkSparkListener(conf),
                                       self.jvm.dev.runlink.spark.RunlinkQueryListener(conf))
        os.makedirs(args["eventlog_dir"], exist_ok=True)
        self.event_log = self.jvm.org.apache.spark.scheduler.EventLoggingListener(
            sc.applicationId, self.jvm.scala.Option.apply(None),
            self.jvm.java.net.URI("file://" + args["eventlog_dir"]), self.sc.conf(), sc._jsc.hadoopConfiguration())
        self.event_log.start()

    def set(self, variant: str, on: bool) -> None:
        if variant == "baseline":
            return
        if variant == "eventlog":
            if on:
                self.bus.addToEventLogQueue(self.event_log)
            else:
                self.bus.removeListener(self.event_log)
            return
        spark_listener, query_listener = self.listeners[variant]
        manager = self.spark._jsparkSession.listenerManager()
        if on:
            self.sc.addSparkListener(spark_listener)
            manager.register(query_listener)
        else:
            self.sc.removeSparkListener(spark_listener)
            manager.unregister(query_listener)
        if variant != "runlink_jvm":
            self.wrappers.set(on)

    def close(self) -> None:
        self.event_log.stop()


def toggle(spark: Any, args: dict, jvm_pid: int) -> dict:
    toggles = Toggles(spark, args)
    bus = toggles.bus
    tracker_pid = args["tracker_pid"]

    def block(variant: str) -> dict:
        toggles.set(variant, True)
        bus.waitUntilEmpty(600000)
        cpu0, py0, trk0 = proc_cpu_s(jvm_pid), time.process_time(), proc_cpu_s(tracker_pid)
        start = time.perf_counter()
        for _ in range(args["block_queries"]):
            query(spark, args)
        bus.waitUntilEmpty(600000)  # the listeners' share of the block's work counts in the block
        out = {"variant": variant, "wall_s": time.perf_counter() - start, "jvm_cpu_s": proc_cpu_s(jvm_pid) - cpu0,
               "python_cpu_s": time.process_time() - py0, "tracker_cpu_s": proc_cpu_s(tracker_pid) - trk0}
        toggles.set(variant, False)
        return out

    for _ in range(args["warmup_queries"]):  # JIT: the workload runs ~2x slower in a fresh JVM's first 100 queries
        query(spark, args)
    for variant in args["variants"]:  # and once through every variant's code path
        block(variant)
    blocks = [block("baseline")]
    variants = args["variants"]
    for repeat in range(args["repeats"]):
        shift = repeat % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            blocks.append(block(variant))
            blocks.append(block("baseline"))
    toggles.close()
    return {"blocks": blocks}


def workload(spark: Any, args: dict, jvm_pid: int) -> dict:
    if args["track_session"]:
        import runlink.spark

        runlink.spark.track_session(spark)
    query(spark, {**args, "rows": 1000})  # warm-up outside the measured span: the same in every variant
    cpu0, py0 = proc_cpu_s(jvm_pid), time.process_time()
    start = time.perf_counter()
    for _ in range(args["queries"]):
        query(spark, args)
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(600000)  # the listeners' share of work counts too
    return {"workload_s": time.perf_counter() - start, "workload_cpu_s": proc_cpu_s(jvm_pid) - cpu0,
            "python_cpu_s": time.process_time() - py0}


def heap(spark: Any, args: dict, jvm_pid: int) -> dict:
    if args["track_session"]:
        import runlink.spark

        runlink.spark.track_session(spark)
    jvm = spark.sparkContext._jvm
    per_job = args["heap_tasks_per_job"]
    jobs = max(1, args["heap_tasks"] // per_job)
    start = time.perf_counter()
    for _ in range(jobs):
        spark.range(0, per_job, 1, per_job).count()
    result: dict[str, Any] = {"workload_s": time.perf_counter() - start, "tasks": jobs * (per_job + 1)}
    spark.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(600000)
    for _ in range(3):
        jvm.java.lang.System.gc()
        time.sleep(0.5)  # let the collector finish between the requested GCs
    result["heap_used"] = jvm.java.lang.management.ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed()
    try:
        histo = subprocess.run(["jcmd", str(jvm_pid), "GC.class_histogram"], capture_output=True, text=True,
                               timeout=300).stdout
    except (OSError, subprocess.SubprocessError):
        histo = ""
    classes = []
    for line in histo.splitlines():
        parts = line.split()
        if len(parts) >= 4 and parts[3].startswith("dev.runlink"):
            classes.append((parts[3], int(parts[1]), int(parts[2])))
    result["runlink_histogram_bytes"] = sum(c[2] for c in classes)
    result["runlink_classes"] = classes
    return result


def main() -> None:
    args = json.loads(sys.argv[1])
    builder = SparkSession.builder.master("local[2]").appName("runlink-bench-" + args["variant"])
    for key, value in args["conf"].items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    jvm_pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    run = {"toggle": toggle, "workload": workload, "heap": heap}[args["mode"]]
    result = {"variant": args["variant"], "pid": os.getpid(), **run(spark, args, jvm_pid)}
    print("BENCH " + json.dumps(result), flush=True)
    spark.stop()


if __name__ == "__main__":
    main()
