"""DAGs the browser tests run with dag.test(): a Spark ETL (SparkSubmitOperator + a Python check) and a DAG
whose task fails (for the alert test). RUNLINK_TEST_OUT is a scratch folder set by the tests."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.11
    from airflow.operators.python import PythonOperator

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

JOB = str(Path(__file__).resolve().parent.parent / "jobs" / "etl_job.py")
OUT = os.environ.get("RUNLINK_TEST_OUT", "/tmp/runlink-ui-test-out")
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
START = datetime(2024, 1, 1)


def _check(**_context) -> int:
    import runlink

    runlink.log_metric("rows_checked", 12345)
    runlink.log_metric("null_ratio", 0.02)
    print("checked the daily table")
    return 12345


def _broken(**_context) -> None:
    print("loading the partner feed")
    raise ValueError("partner feed is empty for today")


with DAG("ui_spark_etl", schedule=None, start_date=START, catchup=False, tags=["ui-test"]) as ui_spark_etl:
    transform = SparkSubmitOperator(
        task_id="transform",
        application=JOB,
        application_args=[f"{OUT}/etl"],
        conn_id="spark_local",
        spark_binary=SPARK_SUBMIT,
        conf={"spark.sql.shuffle.partitions": "4", "spark.ui.enabled": "false"},
        name="ui-etl",
    )
    check = PythonOperator(task_id="check", python_callable=_check, op_kwargs={"api_token": "s3cr3t-value"})
    transform >> check

with DAG("ui_failing", schedule=None, start_date=START, catchup=False, tags=["ui-test"]) as ui_failing:
    PythonOperator(task_id="load_partner_feed", python_callable=_broken)
