"""One Airflow deployment, one run tree (issue 14), on real multi-process Airflow: `airflow standalone` and a
CeleryExecutor deployment with a real Redis broker and a separate worker (see conftest.py). The plugin reports
from the scheduler and the task processes, the Spark listener from the spark-submit'ed driver, the SDK from a
@task, the syncer from Airflow's REST API; the instance is registered without --uid. Everything is read back
through the CLI a user types and compared with Airflow's own REST API.

Each failure message lists the instance uids each component reported (a split run names who said what).
"""

from __future__ import annotations

from typing import Any

import pytest
from deployment_checks import (
    DAG_ID,
    EXPECTED_FINAL,
    TIME_TOLERANCE_S,
    airflow_errors,
    diagnosis,
    instant,
    tracker_attempts,
    tracker_runs,
    tracker_tree,
    uids_reported,
)

pytestmark = pytest.mark.airflow


def test_airflow_ran_every_outcome(deployment: Any) -> None:
    """The premise: Airflow itself ended the run with every outcome the DAG is made of."""
    got = {(task, tries, t["state"]) for (task, tries), t in deployment.truth.items()}
    assert deployment.state == "failed"
    assert EXPECTED_FINAL <= got, f"{got}\nAirflow's errors:\n{airflow_errors(deployment.airflow)}"
    assert deployment.truth[("flaky", 1)]["state"] in ("failed", "up_for_retry"), deployment.truth


def test_plugin_and_syncer_both_reported(deployment: Any) -> None:
    """Both sides were on: the plugin (scheduler and task processes), the syncer, the Spark listener, the SDK."""
    components = uids_reported(deployment.tracker)
    wanted = {"airflow:dag_run", "airflow:task_attempt", "syncer:dag_run", "syncer:task_attempt", "jvm:spark_app",
              "python:metric"}
    assert wanted <= set(components), components
    assert deployment.monitor["tries"] >= len(deployment.truth) - 1, deployment.monitor


def test_one_run_per_dag_run(deployment: Any) -> None:
    """`runlink runs list --dag-id D` shows exactly the DAG runs Airflow has: one, under one instance uid."""
    runs = tracker_runs(deployment.tracker)
    airflow_runs = [r["dag_run_id"] for r in deployment.airflow.api("GET", f"/dags/{DAG_ID}/dagRuns")["dag_runs"]]
    assert sorted(r["run_id"] for r in runs) == sorted(airflow_runs) == [deployment.run_id], diagnosis(deployment)
    assert runs[0]["state"] == deployment.state, diagnosis(deployment)


def test_every_attempt_with_airflow_states_and_tries(deployment: Any) -> None:
    """`runlink runs show D RUN` has every try of every task instance, in Airflow's states."""
    assert not deployment.missing, f"never arrived: {deployment.missing}" + diagnosis(deployment)
    tree = tracker_tree(deployment.tracker, deployment.run_id)
    got = {key: a["state"] for key, a in tracker_attempts(tree).items()}
    want = {key: t["state"] for key, t in deployment.truth.items()}
    assert got == want, diagnosis(deployment)


def test_spark_app_under_the_bash_attempt(deployment: Any) -> None:
    tree = tracker_tree(deployment.tracker, deployment.run_id)
    attempts = tracker_attempts(tree)
    apps = attempts[("spark_submit", 1)]["spark_apps"] if ("spark_submit", 1) in attempts else []
    assert len(apps) == 1, f"Spark apps under spark_submit try 1: {apps}" + diagnosis(deployment)
    app = apps[0]
    assert app["end_time"] and app["name"] == "deployment-tiny", app
    assert app["jobs"] and app["stages"], app
    others = [key for key, a in attempts.items() if key != ("spark_submit", 1) and a.get("spark_apps")]
    assert not others, others


def test_metric_under_the_task_attempt(deployment: Any) -> None:
    tree = tracker_tree(deployment.tracker, deployment.run_id)
    attempts = tracker_attempts(tree)
    metrics = attempts[("metric", 1)]["metrics"] if ("metric", 1) in attempts else []
    assert [(m["key"], m["value"]) for m in metrics] == [("rows_seen", 42)], f"{metrics}" + diagnosis(deployment)


def test_times_equal_airflow(deployment: Any) -> None:
    """Each attempt's start, end and duration equal Airflow's TI.start_date, end_date and duration (within 1 s)."""
    tree = tracker_tree(deployment.tracker, deployment.run_id)
    attempts = tracker_attempts(tree)
    compared, wrong = 0, []
    for key, truth in sorted(deployment.truth.items()):
        if truth["duration"] is None:
            continue
        attempt = attempts.get(key)
        if attempt is None:
            wrong.append(f"{key}: missing")
            continue
        compared += 1
        for ours, theirs in (("start_date", "start_date"), ("end_date", "end_date")):
            a, b = instant(attempt.get(ours)), instant(truth[theirs])
            if a is None or abs((a - b).total_seconds()) > TIME_TOLERANCE_S:
                wrong.append(f"{key} {ours}: tracker {attempt.get(ours)} Airflow {truth[theirs]}")
        if attempt.get("duration_s") is None or abs(attempt["duration_s"] - truth["duration"]) > TIME_TOLERANCE_S:
            wrong.append(f"{key} duration: tracker {attempt.get('duration_s')} Airflow {truth['duration']}")
    assert compared >= 5 and not wrong, "\n".join(wrong) + diagnosis(deployment)
