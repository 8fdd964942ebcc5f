"""DAGs the Airflow tests run with dag.test(); RUNLINK_TEST_OUT is a scratch folder set by the tests."""

from __future__ import annotations

import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

    from airflow import DAG

try:
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2.11
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

try:
    from airflow.providers.standard.operators.python import ShortCircuitOperator
    from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
    from airflow.sdk import BaseOperator
    from airflow.sdk.exceptions import AirflowSkipException
except ImportError:  # Airflow 2.11
    from airflow.exceptions import AirflowSkipException
    from airflow.models.baseoperator import BaseOperator
    from airflow.operators.python import ShortCircuitOperator
    from airflow.triggers.temporal import TimeDeltaTrigger

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator

JOB = str(Path(__file__).resolve().parent.parent / "jobs" / "spark_job.py")
OUT = os.environ.get("RUNLINK_TEST_OUT", "/tmp/runlink-test-out")
START = datetime(2024, 1, 1)
PYTHON = sys.executable
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")

with DAG("rl_spark_submit", schedule=None, start_date=START, catchup=False) as rl_spark_submit:
    SparkSubmitOperator(
        task_id="submit",
        application=JOB,
        application_args=[f"{OUT}/submit"],
        conn_id="spark_local",
        spark_binary=SPARK_SUBMIT,
        conf={"spark.sql.shuffle.partitions": "2", "spark.ui.enabled": "false"},
        name="rl-submit",
    )

with DAG("rl_bash", schedule=None, start_date=START, catchup=False) as rl_bash:
    BashOperator(
        task_id="spark_submit_cmd",
        bash_command=f"{SPARK_SUBMIT} --master 'local[2]' {JOB} {OUT}/bash-submit",
    )
    BashOperator(
        task_id="python_job",
        bash_command=f"{PYTHON} {JOB} {OUT}/bash-python",
        env={"DB_PASSWORD": "s3cr3t-pa55", "PATH": os.environ.get("PATH", "")},
        append_env=False,
    )

with DAG("rl_python_spark", schedule=None, start_date=START, catchup=False) as rl_python_spark:

    @task(task_id="session")
    def session_task() -> dict:
        from pyspark.sql import SparkSession

        import runlink

        spark = (
            SparkSession.builder.master("local[2]")
            .appName("rl-in-task")
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.ui.enabled", "false")
            .getOrCreate()
        )
        try:
            count = spark.range(0, 500).selectExpr("id % 5 AS k").groupBy("k").count().count()
        finally:
            spark.stop()
        runlink.log_metric("groups", count)
        return {"groups": count}

    session_task()


def _flaky(**context) -> str:
    if context["ti"].try_number < 2:
        raise RuntimeError("first try fails on purpose")
    return "second try ok"


def _broken(api_key: str, **context) -> None:
    import runlink

    runlink.log_metric("rows_seen", 42)
    print("about to fail")
    for i in range(1000):
        print(f"progress line {i}")
    raise ValueError("boom: the input is broken")


with DAG("rl_errors", schedule=None, start_date=START, catchup=False) as rl_errors:
    PythonOperator(task_id="flaky", python_callable=_flaky, retries=1, retry_delay=timedelta(seconds=0))
    PythonOperator(
        task_id="broken",
        python_callable=_broken,
        op_kwargs={"api_key": "{{ params.api_key }}", "note": "rendered {{ ds }}"},
        params={"api_key": "k3y-shh"},
    )

with DAG("rl_trivial", schedule=None, start_date=START, catchup=False) as rl_trivial:
    BashOperator(task_id="echo", bash_command="echo hello")
    PythonOperator(task_id="opted_out", python_callable=lambda: 1, params={"runlink_tracking": False})


class WaitBriefly(BaseOperator):
    """Defers on a short TimeDeltaTrigger and resumes in `done`: dag.test() runs the trigger in line, so a
    deferral and its resumption happen without a triggerer process."""

    def __init__(self, seconds: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.seconds = seconds

    def execute(self, context) -> None:
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=self.seconds)), method_name="done")

    def done(self, context, event=None) -> str:
        import runlink

        runlink.log_metric("resumed", 1)
        return "resumed after the trigger"


def _skip_self() -> None:
    raise AirflowSkipException("nothing to do today")


def _fail() -> None:
    raise RuntimeError("fails so that its downstream is upstream_failed")


with DAG("rl_states", schedule=None, start_date=START, catchup=False) as rl_states:
    WaitBriefly(task_id="deferred")
    PythonOperator(task_id="skip_self", python_callable=_skip_self)
    gate = ShortCircuitOperator(task_id="gate", python_callable=lambda: False)
    gate >> BashOperator(task_id="after_gate", bash_command="echo never runs")
    PythonOperator(task_id="fails", python_callable=_fail) >> BashOperator(
        task_id="after_fails", bash_command="echo never runs")
