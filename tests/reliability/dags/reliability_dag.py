"""The Airflow DAG the concurrency scenario runs with dag.test() while many Spark apps report to the same tracker:
a BashOperator whose plain `spark-submit` is tracked by the runlink plugin (no DAG edits), and a Python task that
logs a metric. RUNLINK_RELIABILITY_OUT is the scratch folder (the app writes its own counts there)."""

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

OUT = os.environ.get("RUNLINK_RELIABILITY_OUT", "/tmp/runlink-reliability-out")
APP = Path(__file__).resolve().parent.parent / "apps" / "counted_app.py"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"

with DAG("rel_airflow", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as rel_airflow:
    BashOperator(
        task_id="spark_submit",
        bash_command=(f"{SPARK_SUBMIT} --master 'local[1]' --driver-memory 512m --conf spark.ui.enabled=false "
                      f"--conf spark.sql.shuffle.partitions=2 --conf spark.driver.extraJavaOptions=-XX:+UseSerialGC "
                      f"{APP} {OUT}/dag_app/report.json --jobs 3 > {OUT}/dag_app/driver.log 2>&1"),
    )

    @task(task_id="log_metric")
    def log_metric() -> int:
        import runlink

        runlink.log_metric("reliability_rows", 42)
        return 42

    log_metric()
