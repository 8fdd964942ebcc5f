"""log_metric / log_metrics / log_dataframe: what ends up in the events, for pandas and for real Spark."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import runlink
from runlink import delivery
from runlink.config import Config
from runlink.delivery import Client
from runlink.protocol import validate_event
from runlink.transports import FileTransport


@pytest.fixture
def captured(clean_env: Path) -> FileTransport:
    """A real client whose batches go to a JSON-lines file instead of a tracker."""
    transport = FileTransport(clean_env / "events.jsonl")
    delivery.set_client(Client(Config(home=clean_env, batch_interval_s=0.05), transport=transport))
    return transport


def _events(transport: FileTransport, type_: str) -> list[dict]:
    assert delivery.get_client().flush(10)
    events = [e for e in transport.read_events() if e["type"] == type_]
    for event in events:
        validate_event(event)
    return events


def test_log_metric_carries_the_airflow_context(captured: FileTransport, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "etl")
    monkeypatch.setenv("AIRFLOW_CTX_EXECUTION_DATE", "2026-11-22T00:00:00+00:00")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "load")
    monkeypatch.setenv("AIRFLOW_CTX_TRY_NUMBER", "2")
    runlink.log_metric("rows", 10)
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "other")  # a changed context is seen at once
    runlink.log_metrics({"a": 1.5, "b": "text"})
    events = {e["payload"]["key"]: e for e in _events(captured, "metric")}
    assert events["rows"]["context"] == {"dag_id": "etl", "execution_date": "2026-11-22T00:00:00+00:00",
                                         "task_id": "load", "try_number": "2"}
    assert events["a"]["context"]["task_id"] == "other" and events["b"]["payload"]["value"] == "text"


def test_log_metric_without_context_and_odd_values(captured: FileTransport) -> None:
    import numpy as np

    runlink.log_metric("np", np.int64(7))
    runlink.log_metric("inf", float("inf"))
    runlink.log_metric(123, object())  # odd key and value: turned into text, never an exception
    events = {e["payload"]["key"]: e for e in _events(captured, "metric")}
    assert events["np"]["payload"]["value"] == 7 and "context" not in events["np"]
    assert events["inf"]["payload"]["value"] == "Infinity"
    assert events["123"]["payload"]["value"].startswith("<object object")


def test_log_dataframe_pandas_with_stats(captured: FileTransport) -> None:
    import pandas as pd

    df = pd.DataFrame({"id": [1, 2, 3, None], "name": ["a", "b", "b", None], "ok": [True, False, True, True]})
    runlink.log_dataframe("customers", df, operation="write", path="/data/customers.parquet", with_stats=True)
    (event,) = _events(captured, "dataset")
    payload = event["payload"]
    assert payload["name"] == "customers" and payload["operation"] == "write"
    assert payload["path"] == "/data/customers.parquet" and payload["rows"] == 4
    assert [f["name"] for f in payload["schema"]] == ["id", "name", "ok"]
    assert payload["schema"][0]["type"] == "float64"
    assert payload["column_stats"]["id"] == {"null_count": 1, "distinct_count": 3, "min": 1.0, "max": 3.0,
                                             "mean": 2.0}
    assert payload["column_stats"]["name"] == {"null_count": 1, "distinct_count": 2}
    assert "spark" not in event


def test_log_dataframe_pandas_defaults(captured: FileTransport) -> None:
    import pandas as pd

    runlink.log_dataframe("t", pd.DataFrame({"x": range(5)}), table="db.t", with_schema=False)
    (event,) = _events(captured, "dataset")
    assert event["payload"]["rows"] == 5 and event["payload"]["table"] == "db.t"
    assert "schema" not in event["payload"] and "column_stats" not in event["payload"]


def test_log_dataframe_rejects_other_objects_quietly(captured: FileTransport) -> None:
    runlink.log_dataframe("nope", [1, 2, 3])
    assert _events(captured, "dataset") == []


def test_import_runlink_stays_light() -> None:
    import subprocess

    code = ("import sys, runlink; runlink.log_metric('k', 1); "
            "print(sorted(m for m in ('pandas', 'pyspark', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                         env={"RUNLINK_TRACKING": "false", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def spark():
    pyspark = pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    session = (SparkSession.builder.master("local[1]").appName("runlink-sdk-test")
               .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1")
               .config("spark.env.AIRFLOW_CTX_DAG_ID", "from_spark_conf")
               # without AQE one query is one job, so the test can see that no separate count() ran
               .config("spark.sql.adaptive.enabled", "false").getOrCreate())
    assert pyspark.__version__
    yield session
    session.stop()


@pytest.mark.spark
def test_log_dataframe_spark_one_aggregation_and_app_ref(captured: FileTransport, spark) -> None:
    df = spark.createDataFrame([(1, "a", 2.0), (2, "b", None), (3, "b", 4.0)], "id INT, name STRING, score DOUBLE")
    jobs_before = len(spark.sparkContext.statusTracker().getJobIdsForGroup(None))
    runlink.log_dataframe("scores", df, table="db.scores", with_stats=True)
    jobs = len(spark.sparkContext.statusTracker().getJobIdsForGroup(None)) - jobs_before
    (event,) = _events(captured, "dataset")
    payload = event["payload"]
    assert jobs == 1, f"{jobs} Spark jobs for one log_dataframe"
    assert payload["rows"] == 3 and payload["format"] == "spark" and payload["table"] == "db.scores"
    assert payload["schema"] == [{"name": "id", "type": "int", "nullable": True},
                                 {"name": "name", "type": "string", "nullable": True},
                                 {"name": "score", "type": "double", "nullable": True}]
    assert payload["column_stats"]["score"] == {"null_count": 1, "distinct_count": 2, "min": 2.0, "max": 4.0,
                                                "mean": 3.0}
    assert payload["column_stats"]["name"] == {"null_count": 0, "distinct_count": 2}
    assert event["spark"] == {"app_id": spark.sparkContext.applicationId}
    assert event["context"] == {"dag_id": "from_spark_conf"}  # no AIRFLOW_CTX_* env: the spark.env.* conf


@pytest.mark.spark
def test_log_dataframe_spark_env_context_wins(captured: FileTransport, spark,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "from_env")
    runlink.log_dataframe("x", spark.range(10), with_schema=False)
    (event,) = _events(captured, "dataset")
    assert event["payload"]["rows"] == 10 and event["context"] == {"dag_id": "from_env"}
