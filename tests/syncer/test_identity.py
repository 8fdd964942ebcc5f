"""The instance uid as the syncer learns it from the real Airflow (its /runlink/instance endpoint, served by the
plugin on the API server on Airflow 3 and the web server on 2.11)."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from syncer_helpers import DAG_ID, UID_A, monitor_once, register

from support.cli import runlink_cli

pytestmark = pytest.mark.airflow


def test_the_endpoint_reports_the_instance_uid(airflow_a) -> None:
    body = requests.get(airflow_a.url + "/runlink/instance", timeout=30).json()
    assert body["uid"] == UID_A and body["source"] == "pinned"
    assert body["airflow_version"] == airflow_a.version


def test_add_without_uid_learns_it_from_the_instance(airflow_a, tracker_factory) -> None:
    tracker = tracker_factory(backend="sqlite")
    result = runlink_cli(tracker, "airflow", "add", "learned", "--url", airflow_a.url, "--username",
                         airflow_a.username, "--password-env", "SYNCER_TEST_PASSWORD",
                         env={"SYNCER_TEST_PASSWORD": airflow_a.password})
    assert f"(uid {UID_A}: learned from the instance;" in result.stdout
    assert tracker.get_json("/api/v1/airflow-instances/learned")["uid"] == UID_A


def test_a_registration_under_another_uid_gets_the_reported_one_as_alias(airflow_a, finished_run, recorder,
                                                                           tracker_factory) -> None:
    run_id = finished_run["run_id"]
    tracker: Any = tracker_factory(backend="sqlite")
    register(tracker, "legacy", airflow_a, "legacy-uid")  # registered by hand under a uid the plugin never reports
    response = tracker.post_events(recorder.of_run(DAG_ID, run_id))  # the plugin's events, under UID_A
    assert response.status_code == 202, response.text
    monitor_once(tracker, "legacy")
    assert tracker.get_json("/api/v1/airflow-instances/legacy")["aliases"] == [UID_A]
    runs = tracker.get_json("/api/v1/dag-runs", dag_id=DAG_ID, run_id=run_id)["items"]
    assert [r["uid"] for r in runs] == ["legacy-uid"]  # one run: the plugin's and the syncer's events joined
