"""A Databand-style DAG migrated with only the README's renames ("Coming from Databand"), reporting through the
DBND__ variables it already had: under dag.test() with a real tracker over HTTP, its nested tracked functions
(one failing, one with a masked password argument), metrics, dataframes and dataset operations land under the
task attempt; `get_monitor_dag` takes Databand's keywords; the instance uid is the plugin's."""

from __future__ import annotations

import importlib.util
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from airflow_runs import attempts, dag_module, wait_for_tree

from runlink import delivery
from runlink.airflow import identity

pytestmark = pytest.mark.airflow

#: outside the DAGs folder on purpose: its monitor DAG must not be scheduled by the tests that run a whole Airflow
MONITOR_DAG = Path(__file__).resolve().parent / "databand" / "monitor_dag.py"


def monitor_module() -> Any:
    spec = importlib.util.spec_from_file_location("monitor_dag", MONITOR_DAG)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(autouse=True)
def airflow_logging_set_up() -> None:
    """Airflow sets up its logging (which captures warnings) on the first DAG made in a process; made here, before
    a test's `pytest.warns`, so the warnings it checks are recorded rather than logged."""
    from runlink.airflow import get_monitor_dag

    get_monitor_dag(dag_id="rl_monitor_first")


@pytest.fixture
def databand_env(airflow_tracker: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The tracker named only by Databand's variables (the RUNLINK_ ones unset)."""
    monkeypatch.delenv("RUNLINK_URL")
    monkeypatch.delenv("RUNLINK_TOKEN")
    monkeypatch.setenv("DBND__CORE__DATABAND_URL", airflow_tracker.url)
    monkeypatch.setenv("DBND__CORE__DATABAND_ACCESS_TOKEN", airflow_tracker.token)
    monkeypatch.setenv("DBND__TRACKING", "True")
    delivery.set_client(None)
    yield airflow_tracker
    delivery.set_client(None)


def test_migrated_dag_lands_spans_metrics_and_datasets(databand_env: Any) -> None:
    dag_run = dag_module("runlink_databand_dags.py").dag.test()

    def ready(tree: dict) -> bool:
        found = attempts(tree, "ingest")
        return bool(found) and found[0]["state"] == "success" and len(found[0]["spans"]) == 2 \
            and len(found[0]["datasets"]) == 4

    tree = wait_for_tree(databand_env, "rl_databand", dag_run.run_id, ready)
    (ingest,) = attempts(tree, "ingest")
    assert "dbnd-s3cret-pw" not in str(ingest)
    assert ingest["return_value"].strip('"') == (identity.derived_uid() or "none")

    read_orders, enrich = ingest["spans"]
    assert (read_orders["name"], read_orders["state"], read_orders["metrics"]) == ("read_orders", "success",
                                                                                  ["orders_read"])
    assert enrich["name"] == "enrich" and enrich["state"] == "success"
    connect, validate = enrich["children"]
    assert connect["args"] == {"host": "'warehouse.internal'", "password": "***"}
    assert validate["state"] == "failed" and validate["error"]["type"] == "builtins.ValueError"
    assert "orders below the minimum amount" in validate["error"]["message"]
    assert {m["key"]: m["value"] for m in ingest["metrics"]} == {"orders_read": 4}

    ops = {(d["name"], d["operation"]): d for d in ingest["datasets"]}
    out = os.environ["RUNLINK_TEST_OUT"]
    read = ops[(f"{out}/orders.csv", "read")]
    assert (read["success"], read["rows"], read["span_id"]) == (True, 4, read_orders["id"])
    assert [f["name"] for f in read["schema"]] == ["order_id", "amount"]
    assert read["path"] == f"file:{out}/orders.csv" and read["preview"] is None
    rejected = ops[(f"{out}/rejected_orders", "write")]
    assert rejected["success"] is False and rejected["span_id"] == enrich["id"]
    assert rejected["error"]["message"] == "orders below the minimum amount"
    written = ops[(f"{out}/enriched_orders", "write")]
    assert (written["success"], written["rows"], written["span_id"]) == (True, 4, None)
    assert ops[("enriched_orders", "read")]["column_stats"]["doubled"]["max"] == 25.0


def _interval(dag: Any) -> timedelta:
    """A DAG's fixed schedule interval (Airflow 3 names it `delta`, 2.11 `_delta`)."""
    timetable = dag.timetable
    return getattr(timetable, "delta", None) or timetable._delta


def test_monitor_dag_takes_databand_keywords_and_instance_uid_aliases() -> None:
    with pytest.warns(UserWarning, match="ignores force_restart_after, guard_memory"):
        monitor = monitor_module().dag
    assert monitor.dag_id == "rl_databand_monitor" and monitor.max_active_runs == 1
    assert _interval(monitor) == timedelta(minutes=3)

    from runlink.airflow import get_monitor_dag

    with pytest.warns(UserWarning, match="not Databand keywords either: colour"):
        seconds = get_monitor_dag(dag_id="rl_monitor_seconds", check_interval=90, colour="blue")
    assert _interval(seconds) == timedelta(seconds=90)

    import runlink.airflow

    assert runlink.airflow.get_airflow_instance_uid() == runlink.airflow.instance_uid()
    url = "postgresql://airflow:pw@db.example:5432/airflow"
    assert identity.databand_uid(url) == str(uuid.uuid5(uuid.NAMESPACE_URL, "db.example:5432/airflow"))
