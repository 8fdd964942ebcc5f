"""End to end: real Airflow (dag.test()), real local Spark, real tracker. The Spark applications each task
launches must land under that task's attempt, with their jobs, stages and SQL queries."""

from __future__ import annotations

import pytest
from airflow_runs import attempts, run_dag, run_dag_in_subprocess, wait_for_tree

from support.spark_runs import listener_jar_or_skip

pytestmark = [pytest.mark.airflow, pytest.mark.spark]


def _spark_done(attempt: dict) -> bool:
    """The attempt ended (its end event travels apart from the JVM's) and its Spark apps are complete."""
    apps = attempt.get("spark_apps") or []
    return (attempt.get("state") not in (None, "running") and bool(apps)
            and all(app.get("end_time") and app["jobs"] and app["stages"] for app in apps))


def _check_app(app: dict) -> None:
    assert app["jobs"], app
    assert all(job.get("result") == "succeeded" for job in app["jobs"]), app["jobs"]
    assert any(stage["status"] == "succeeded" and stage["metrics"]["executor_run_time_ms"] is not None
               for stage in app["stages"]), app["stages"]
    assert app["queries"], "no SQL query recorded"


def test_spark_submit_operator(airflow_tracker) -> None:
    listener_jar_or_skip()
    dag_run = run_dag("rl_spark_submit")
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    tree = wait_for_tree(airflow_tracker, "rl_spark_submit", dag_run.run_id,
                         lambda t: any(_spark_done(a) for a in attempts(t, "submit")) and t["state"] == "success")
    (attempt,) = attempts(tree, "submit")
    assert attempt["state"] == "success"
    assert attempt["operator"].endswith("SparkSubmitOperator")
    (app,) = attempt["spark_apps"]
    _check_app(app)
    assert tree["state"] == "success"


def test_bash_operator_plain_commands(airflow_tracker) -> None:
    """`spark-submit app.py` and `python job.py` in bash_command, unchanged, report under their task."""
    listener_jar_or_skip()
    dag_run = run_dag("rl_bash")
    tree = wait_for_tree(
        airflow_tracker, "rl_bash", dag_run.run_id,
        lambda t: all(any(_spark_done(a) for a in attempts(t, task)) for task in ("spark_submit_cmd", "python_job")),
    )
    for task_id in ("spark_submit_cmd", "python_job"):
        (attempt,) = attempts(tree, task_id)
        assert attempt["state"] == "success", attempt
        (app,) = attempt["spark_apps"]
        _check_app(app)
    (python_job,) = attempts(tree, "python_job")
    env = python_job["params"]["env"]
    assert env["DB_PASSWORD"] == "***", env  # Airflow's secrets masker
    assert "s3cr3t-pa55" not in str(python_job["params"])


def test_session_in_python_task(airflow_tracker) -> None:
    """A SparkSession created inside a @task (in the task process) is tracked with no code change."""
    listener_jar_or_skip()
    run_id = run_dag_in_subprocess("rl_python_spark")
    tree = wait_for_tree(airflow_tracker, "rl_python_spark", run_id,
                         lambda t: any(_spark_done(a) and a["metrics"] for a in attempts(t, "session")))
    (attempt,) = attempts(tree, "session")
    assert attempt["state"] == "success"
    (app,) = attempt["spark_apps"]
    _check_app(app)
    assert {m["key"]: m["value"] for m in attempt["metrics"]}["groups"] == 5
    assert attempt["return_value"] and '"groups": 5' in attempt["return_value"]
