"""DAGs for test_shared_cluster: two tasks of one DAG run do their Spark work on one shared application.

`rl_shared_connect`: each task opens its own session on a Spark Connect server (RUNLINK_TEST_CONNECT_URL).
`rl_shared_classic`: each task runs its work on a thread of its own over one classic SparkSession that the driver
created before any task (SHARED["spark"], set by the runner). Either way `runlink.spark.track_session(spark)` sets
the task's context on the work, and each task writes its own parquet folder under RUNLINK_TEST_OUT.
"""

from __future__ import annotations

import os
import threading
from datetime import datetime
from typing import Any

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

    from airflow import DAG

START = datetime(2026, 1, 1)
#: the classic driver's session, set by the runner before dag.test()
SHARED: dict[str, Any] = {}
#: rows each task writes: different, so the trees can be told apart by more than the path
ROWS = {"extract": 120, "load": 60}


def output(kind: str, task_id: str) -> str:
    return os.path.join(os.environ["RUNLINK_TEST_OUT"], f"shared_{kind}_{task_id}")


def _work(spark: Any, kind: str, task_id: str) -> None:
    import runlink.spark

    runlink.spark.track_session(spark)  # this task's context, from AIRFLOW_CTX_*
    (spark.range(0, ROWS[task_id]).selectExpr("id % 3 AS k").groupBy("k").count()
     .write.mode("overwrite").parquet(output(kind, task_id)))


def _connect(task_id: str) -> None:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.remote(os.environ["RUNLINK_TEST_CONNECT_URL"]).create()
    try:
        _work(spark, "connect", task_id)
    finally:
        spark.stop()


def _classic(task_id: str) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            _work(SHARED["spark"], "classic", task_id)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the task
            failures.append(exc)

    worker = threading.Thread(target=run, name=f"driver-{task_id}")
    worker.start()
    worker.join()
    if failures:
        raise failures[0]


with DAG("rl_shared_connect", schedule=None, start_date=START, catchup=False) as rl_shared_connect:

    @task(task_id="extract")
    def connect_extract() -> None:
        _connect("extract")

    @task(task_id="load")
    def connect_load() -> None:
        _connect("load")

    connect_extract() >> connect_load()


with DAG("rl_shared_classic", schedule=None, start_date=START, catchup=False) as rl_shared_classic:

    @task(task_id="extract")
    def classic_extract() -> None:
        _classic("extract")

    @task(task_id="load")
    def classic_load() -> None:
        _classic("load")

    classic_extract() >> classic_load()
