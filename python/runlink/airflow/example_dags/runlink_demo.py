"""The runlink demo DAG: four tasks, no runlink code in any of them except one log_metric call.

- `spark_submit`: SparkSubmitOperator running a PySpark app;
- `bash_spark_submit`: a plain `spark-submit app.py` in a BashOperator;
- `session_in_task`: a @task that creates a SparkSession and logs a metric with runlink.log_metric;
- `fails`: a task that raises, to show the error and traceback in the tree.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

    from airflow import DAG
try:
    from airflow.providers.standard.operators.bash import BashOperator
except ImportError:  # Airflow 2.11
    from airflow.operators.bash import BashOperator
from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

JOB = str(Path(__file__).resolve().parent / "jobs" / "demo_job.py")
OUT = os.environ.get("RUNLINK_DEMO_OUT", "/tmp/runlink-demo-out")
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")

with DAG(
    "runlink_demo",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["runlink"],
    doc_md=__doc__,
) as dag:
    spark_submit = SparkSubmitOperator(
        task_id="spark_submit",
        application=JOB,
        application_args=[f"{OUT}/spark_submit"],
        conn_id="runlink_demo_spark",
        spark_binary=SPARK_SUBMIT,
        conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"},
        name="runlink-demo-submit",
    )

    bash_spark_submit = BashOperator(
        task_id="bash_spark_submit",
        bash_command=f"{SPARK_SUBMIT} --master 'local[2]' {JOB} {OUT}/bash",
    )

    @task(task_id="session_in_task")
    def session_in_task() -> dict:
        from pyspark.sql import SparkSession

        import runlink

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("runlink-demo-in-task")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        try:
            rows = spark.range(0, 1000).selectExpr("id % 10 AS bucket").groupBy("bucket").count().collect()
        finally:
            spark.stop()
        runlink.log_metric("buckets", len(rows))
        return {"buckets": len(rows)}

    @task(task_id="fails")
    def fails() -> None:
        raise ValueError("this task fails on purpose: look at its error in the tree")

    spark_submit >> bash_spark_submit >> session_in_task() >> fails()
