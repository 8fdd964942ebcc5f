"""The syncer's end-to-end DAG: one task per outcome the syncer must copy (success, failure, retry then success,
upstream_failed, skipped). `SYNCER_TEST_FLAVOR=b` (the second Airflow instance) makes `boom` succeed, so the two
instances hold different facts under the same dag_id, run_id and logical date."""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

try:  # Airflow 3
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.python import PythonOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow.operators.bash import BashOperator
    from airflow.operators.python import PythonOperator

    from airflow import DAG

FLAVOR = os.environ.get("SYNCER_TEST_FLAVOR", "a")


def _flaky(**context) -> str:
    """Fails on its first try, succeeds on the second (a marker file remembers the first try)."""
    marker = Path(os.environ["SYNCER_TEST_MARKERS"]) / (context["run_id"].replace(":", "_").replace("+", "_"))
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.write_text("first try")
        raise RuntimeError("first try fails on purpose")
    return "second try"


def _skip() -> None:
    from airflow.exceptions import AirflowSkipException

    raise AirflowSkipException("skipped on purpose")


with DAG(
    "syncer_e2e",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["runlink", "syncer-test"],
    default_args={"owner": "syncer-tests"},
    description="one task per outcome",
) as dag:
    ok = BashOperator(task_id="ok", bash_command="echo ok")
    boom = BashOperator(task_id="boom", bash_command="exit 0" if FLAVOR == "b" else "echo boom; exit 3")
    after_boom = BashOperator(task_id="after_boom", bash_command="echo never")
    flaky = PythonOperator(task_id="flaky", python_callable=_flaky, retries=1, retry_delay=timedelta(seconds=1))
    skip_me = PythonOperator(task_id="skip_me", python_callable=_skip)
    ok >> boom >> after_boom
    ok >> flaky
