"""A Databand-tracked DAG moved to runlink with only the renames of README "Coming from Databand":

    from dbnd import task, log_metric, log_dataframe, log_dataset_op, dataset_op_logger
    from dbnd_airflow.utils import get_airflow_instance_uid

became the imports below (`@task` on plain functions -> `@track`, `dataset_op_logger` -> `dataset_op`); the code
under them is Databand's, keyword arguments included. Its monitor DAG file is tests/airflow/databand/monitor_dag.py
(outside this folder, so that no test running a whole Airflow schedules it).
"""

from __future__ import annotations

import os
from datetime import datetime

import pandas as pd

from runlink import dataset_op, log_dataframe, log_dataset_op, log_metric, track
from runlink.airflow import get_airflow_instance_uid

try:
    from airflow.sdk import DAG
    from airflow.sdk import task as airflow_task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task as airflow_task

    from airflow import DAG

OUT = os.environ.get("RUNLINK_TEST_OUT", "/tmp/runlink-test-out")


@track
def read_orders(path: str) -> pd.DataFrame:
    with dataset_op(path, "read", with_histograms=True) as logger:  # with_histograms: accepted, ignored
        orders = pd.DataFrame({"order_id": [1, 2, 3, 4], "amount": [10.0, 12.5, 7.25, 3.0]})
        logger.set(data=orders)
    log_metric("orders_read", len(orders))
    return orders


@track(capture_args=True)
def connect(host: str, password: str) -> str:
    return f"connected to {host}"


@track
def validate(orders: pd.DataFrame) -> None:
    if (orders["amount"] < 5).any():
        raise ValueError("orders below the minimum amount")


@track(name="enrich")
def enrich(orders: pd.DataFrame) -> pd.DataFrame:
    connect("warehouse.internal", password="dbnd-s3cret-pw")
    try:
        validate(orders)
    except ValueError as exc:
        log_dataset_op(f"{OUT}/rejected_orders", op_type="write", success=False, error=exc, with_preview=False)
    return orders.assign(doubled=orders["amount"] * 2)


with DAG(dag_id="rl_databand", start_date=datetime(2024, 1, 1), schedule=None, catchup=False) as dag:

    @airflow_task
    def ingest() -> str:
        orders = enrich(read_orders(f"{OUT}/orders.csv"))
        log_dataframe("enriched_orders", orders, with_stats=True)
        log_dataset_op(f"{OUT}/enriched_orders", "write", data=orders, with_schema=True)
        return get_airflow_instance_uid() or "none"

    ingest()
