"""End to end without Spark: attempts, retries, errors, masked params, log head/tail, metrics, opt-outs."""

from __future__ import annotations

import pytest
from airflow_runs import attempts, run_dag, wait_for_tree

pytestmark = pytest.mark.airflow


def test_retry_error_params_logs_metrics(airflow_tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLINK_AIRFLOW_CAPTURE_LOGS", "true")
    monkeypatch.setenv("RUNLINK_AIRFLOW_CAPTURE_SOURCE", "true")
    monkeypatch.setenv("RUNLINK_AIRFLOW_LOG_BYTES", "8192")
    dag_run = run_dag("rl_errors")

    def ready(tree: dict) -> bool:
        flaky = attempts(tree, "flaky")
        broken = attempts(tree, "broken")
        return (len(flaky) == 2 and flaky[-1]["state"] == "success" and broken
                and broken[0]["state"] == "failed" and broken[0]["log"] and broken[0]["metrics"]
                and tree["state"] == "failed")

    tree = wait_for_tree(airflow_tracker, "rl_errors", dag_run.run_id, ready)

    first, second = attempts(tree, "flaky")
    assert (first["try_number"], second["try_number"]) == (1, 2)
    assert first["state"] == "up_for_retry"
    assert "first try fails on purpose" in first["error"]["message"]
    assert "RuntimeError" in first["error"]["type"]
    assert second["state"] == "success" and second["error"] is None
    assert second["return_value"] == '"second try ok"'

    (broken,) = attempts(tree, "broken")
    assert broken["error"]["type"].endswith("ValueError")
    assert "boom: the input is broken" in broken["error"]["message"]
    assert "Traceback" in broken["error"]["traceback"] and "_broken" in broken["error"]["traceback"]
    assert broken["operator"].endswith("PythonOperator")
    assert broken["duration_s"] is not None and broken["duration_s"] >= 0
    op_kwargs = broken["params"]["op_kwargs"]
    assert op_kwargs["api_key"] == "***", op_kwargs  # Airflow's secrets masker on a sensitive key
    assert op_kwargs["note"].startswith("rendered 20")  # rendered template
    assert "k3y-shh" not in str(broken["params"])
    assert "def _broken" in (broken["source_code"] or "")
    assert {m["key"]: m["value"] for m in broken["metrics"]} == {"rows_seen": 42}
    log_text = broken["log"]["text"]
    assert "progress line 999" in log_text and "boom: the input is broken" in log_text  # the tail
    assert log_text.count("progress line 999") == 1
    assert broken["log"]["truncated"] is True


def test_exclusions_and_opt_out(airflow_tracker, monkeypatch: pytest.MonkeyPatch) -> None:
    dag_run = run_dag("rl_trivial")
    tree = wait_for_tree(airflow_tracker, "rl_trivial", dag_run.run_id,
                         lambda t: bool(attempts(t, "echo")) and t["state"] == "success")
    assert attempts(tree, "echo")[0]["state"] == "success"
    assert attempts(tree, "opted_out") == []  # params={"runlink_tracking": False}

    monkeypatch.setenv("RUNLINK_AIRFLOW_EXCLUDE_DAGS", "rl_triv*")
    excluded = run_dag("rl_trivial")
    page = airflow_tracker.get_json("/api/v1/dag-runs", dag_id="rl_trivial", run_id=excluded.run_id)
    assert page["items"] == []
