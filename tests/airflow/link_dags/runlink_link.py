"""One small DAG for the extra-link test: a task whose attempt the Airflow UI links to in runlink."""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

    from airflow import DAG

with DAG("link_both_ways", schedule=None, start_date=datetime(2024, 1, 1), catchup=False):

    @task
    def compute() -> int:
        return 42

    compute()
