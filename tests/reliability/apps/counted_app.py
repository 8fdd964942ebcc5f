"""A PySpark application for the fault suite that reports its OWN view of what it did, so the tracker's copy can be
compared with Spark's (not with what the listener says it sent):

- jobs and the stages that ran, from `sc.statusTracker()` once Spark's listener bus is empty;
- the DataFrame actions it called (each one is a SQL query the query listeners see);
- the runlink JVM listener's delivery counters (sent, dropped, still pending, send errors) read by reflection
  after `spark.stop()`, i.e. after the listener's bounded end-of-application flush;
- wall times: start, body (the jobs), stop (where the flush happens).

usage: counted_app.py OUT_JSON [--jobs N] [--seconds S] [--oversized DIR] [--track-python]

--seconds paces the jobs over S seconds (a long-running app, so a tracker outage happens while it runs).
--oversized DIR: a ~10 MB plan (a CASE WHEN of 1,250 branches with 2,000-char literals) and a 10,000-column DataFrame
written to parquet under DIR, plus `runlink.log_dataframe` of it and of a column whose type string is huge.
"""

from __future__ import annotations

import argparse
import json
import os
import time

STARTED = time.monotonic()

from pyspark.sql import SparkSession  # noqa: E402 - the start time includes pyspark's import
from pyspark.sql import functions as F  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("--jobs", type=int, default=3)
parser.add_argument("--seconds", type=float, default=0.0)
parser.add_argument("--oversized")
parser.add_argument("--track-python", action="store_true")
args = parser.parse_args()

spark = SparkSession.builder.appName(os.environ.get("RUNLINK_APP_NAME", "runlink-reliability")).getOrCreate()
sc = spark.sparkContext
jvm, gateway = sc._jvm, sc._gateway
if args.track_python:
    import runlink.spark

    runlink.spark.track_session(spark)
session_ready = time.monotonic()
actions = 0
result: dict = {"app_id": sc.applicationId}

for i in range(args.jobs):
    groups = 3 + i % 5
    rows = spark.range(0, 3000, 1, 2).selectExpr(f"id % {groups} AS k").groupBy("k").count().collect()
    assert sorted(r["k"] for r in rows) == list(range(groups)), rows
    actions += 1
    if args.seconds:  # pacing the workload over the app's lifetime (not synchronisation)
        time.sleep(max(0.0, session_ready + args.seconds * (i + 1) / args.jobs - time.monotonic()))

if args.oversized:
    from pyspark.sql.types import IntegerType, StructField, StructType

    import runlink

    branches, literal = 1250, "x" * 2000  # ~10 MB of plan text (Spark's own QueryExecution.toString)
    case = "CASE " + " ".join(f"WHEN id = {b} THEN '{literal}{b}'" for b in range(branches)) + " ELSE 'none' END"
    big = spark.range(0, 20, 1, 1).selectExpr("id", f"{case} AS label")
    got = {r["id"]: r["label"] for r in big.collect()}
    actions += 1
    assert got[7] == literal + "7" and len(got) == 20
    result["plan_chars"] = len(big._jdf.queryExecution().toString())

    columns, out_dir = 10_000, os.path.join(args.oversized, "wide")
    wide = spark.range(0, 5, 1, 1).select(*[(F.col("id") + c).alias(f"col_{c}") for c in range(columns)])
    wide.write.mode("overwrite").parquet(out_dir)
    actions += 1
    back = spark.read.parquet(out_dir)
    assert len(back.columns) == columns and back.count() == 5
    actions += 1
    runlink.log_dataframe("wide", back, operation="read", path=out_dir)  # one more action: the row count
    actions += 1
    long_name = "n" * 6000  # a field name that makes the column's type string longer than the protocol allows
    nested = spark.createDataFrame([((1,),)], StructType([StructField("s", StructType(
        [StructField(long_name, IntegerType())]))]))
    runlink.log_dataframe("long_type", nested, operation="read")
    actions += 1
    result["columns"] = columns

# Spark's own view, once its listener bus has processed every event posted so far (the status store is fed there).
sc._jsc.sc().listenerBus().waitUntilEmpty(120_000)
tracker = sc.statusTracker()
jobs = sorted(tracker.getJobIdsForGroup(None))
stages = set()
for job_id in jobs:
    info = tracker.getJobInfo(job_id)
    for stage_id in info.stageIds if info else []:
        stage = tracker.getStageInfo(stage_id)
        if stage and stage.numCompletedTasks + stage.numFailedTasks > 0:  # skipped stages never ran
            stages.add((stage_id, stage.currentAttemptId))
body_done = time.monotonic()
if args.track_python:
    from runlink.spark.session import tracked

    tracking = tracked(sc.applicationId)
    if tracking is not None and tracking.listener is not None:
        result["python_listener_drained"] = tracking.listener.drain(30.0)
spark.stop()
stopped = time.monotonic()


def _field(obj, name):
    field = obj.getClass().getDeclaredField(name)
    field.setAccessible(True)
    return field.get(obj)


def _long(value) -> int:
    """py4j hands an AtomicLong over as a Python int (a java.lang.Number), or as an object to call get() on."""
    return value if isinstance(value, int) else int(value.get())


def _counters(agent, delivery) -> dict:
    return {"sent": _long(_field(delivery, "sent")),
            "dropped": _long(_field(delivery, "dropped")) + _long(_field(agent, "workDropped")),
            "pending": _field(delivery, "queue").size() + _field(delivery, "retrySize"),
            "send_errors": _long(_field(delivery, "sendErrors"))}


def _settle(agent, delivery, deadline_s: float = 30.0) -> bool:
    """Wait (bounded) until the sender is idle with nothing pending: no request in flight, so the counters are exact.
    Otherwise close the sender and join it (a request in flight then settles into sent or pending)."""
    sender = _field(delivery, "thread")
    deadline = time.monotonic() + deadline_s
    last = None
    while time.monotonic() < deadline:
        now = (_counters(agent, delivery), str(sender.getState()))
        idle = now[0]["pending"] == 0 and now[1] in ("WAITING", "TIMED_WAITING")
        if idle and now == last:
            return True
        last = now if idle else None
        time.sleep(0.1)  # polling interval; the condition is an idle sender seen twice with the same counters
    close = delivery.getClass().getDeclaredMethod("close", gateway.new_array(jvm.java.lang.Class, 0))
    close.setAccessible(True)
    close.invoke(delivery, gateway.new_array(jvm.java.lang.Object, 0))
    deadline = time.monotonic() + 15
    while sender.isAlive() and time.monotonic() < deadline:
        time.sleep(0.05)  # polling interval; the condition is the sender thread's end
    return False


def jvm_delivery() -> list[dict]:
    """The JVM listener's counters (package-private `Agent`/`Delivery`, read by reflection), one per tracker.

    `at_stop`: right after spark.stop() (its bounded flush done): what a real exit would leave behind. Then the
    sender is let settle (see _settle), and the top-level sent/dropped/pending account for every event the listener
    accepted (`idle`: exactly; else a batch cut by close() could be missing from them)."""
    try:
        cls = jvm.org.apache.spark.util.Utils.classForName("dev.runlink.spark.Agent", True, False)
    except Exception as exc:  # noqa: BLE001 - no listener jar: nothing to read
        return [{"error": repr(exc)[:300]}]
    field = cls.getDeclaredField("AGENTS")
    field.setAccessible(True)
    out = []
    for agent in field.get(None).values():  # py4j hands a java.util.Map over as a Python mapping
        delivery = _field(agent, "delivery")
        at_stop = _counters(agent, delivery)
        idle = _settle(agent, delivery)
        out.append({**_counters(agent, delivery), "idle": idle, "at_stop": at_stop,
                    "target": str(_field(delivery, "target"))})
    return out


result.update(jobs=jobs, stages=sorted(stages), actions=actions, jvm=jvm_delivery(),
              start_s=round(session_ready - STARTED, 3), body_s=round(body_done - session_ready, 3),
              stop_s=round(stopped - body_done, 3))
with open(args.out, "w") as handle:
    json.dump(result, handle)
print("APP DONE", json.dumps({k: result[k] for k in ("app_id", "actions", "jvm", "stop_s")}), flush=True)
