"""The deployment tests' DAG: one task per outcome an attempt can have, as a user writes it. Nothing
runlink-specific but `runlink.log_metric`: the plugin injects the Spark listener into the plain `spark-submit`.

DEPLOYMENT_TEST_JOB names the PySpark file (the DAG file is copied into each Airflow's own DAGs folder)."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import runlink

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG, task
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2.11
    from airflow.decorators import task
    from airflow.exceptions import AirflowSkipException
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    from airflow import DAG

JOB = os.environ.get("DEPLOYMENT_TEST_JOB", "tiny_spark.py")


def _second_try_wins(**context) -> str:
    """Fails on its first try, succeeds on its second."""
    if context["ti"].try_number == 1:
        raise RuntimeError("the first try fails on purpose")
    return "second try"


def _skip() -> None:
    raise AirflowSkipException("skipped on purpose")


with DAG(
    "deployment_e2e",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["deployment-test"],
    default_args={"owner": "deployment-tests"},
) as dag:
    spark_submit = BashOperator(task_id="spark_submit", bash_command=f"spark-submit --master 'local[1]' {JOB}")

    @task(task_id="metric")
    def metric() -> int:
        runlink.log_metric("rows_seen", 42)
        return 42

    flaky = PythonOperator(task_id="flaky", python_callable=_second_try_wins, retries=1,
                           retry_delay=timedelta(seconds=1))
    boom = BashOperator(task_id="boom", bash_command="echo boom; exit 3")
    after_boom = BashOperator(task_id="after_boom", bash_command="echo never runs")
    skip_me = PythonOperator(task_id="skip_me", python_callable=_skip)
    boom >> after_boom
    metric()
