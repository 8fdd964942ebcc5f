"""Order independence and idempotence of OpenLineage child runs linked by the provider's ids (real tracker, SQLite
and PostgreSQL): runlink's attempt events and a child's START / FAIL in every order give the same attempt view
(child state, times, error, one merged dataset per direction), and replaying everything changes nothing."""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import datetime, timezone
from typing import Any

import requests

from runlink.protocol.events import make_event
from runlink.tracker.openlineage import ids as openlineage_ids

NAMESPACE = "prod-airflow"
LOGICAL = datetime(2026, 4, 2, 6, 30, 0, 250000, tzinfo=timezone.utc)


def _attempt_events(dag_id: str) -> list[dict[str, Any]]:
    ctx = {"dag_id": dag_id, "task_id": "load", "try_number": "2", "map_index": "3",
           "logical_date": LOGICAL.isoformat()}
    return [make_event("task_attempt.start", {"state": "running", "start_date": "2026-04-02T06:31:00Z"}, context=ctx,
                       agent="airflow", time="2026-04-02T06:31:00Z", event_id=f"{dag_id}-s"),
            make_event("task_attempt.end", {"state": "failed", "end_date": "2026-04-02T06:35:00Z"}, context=ctx,
                       agent="airflow", time="2026-04-02T06:35:00Z", event_id=f"{dag_id}-e")]


def _child(dag_id: str, run_id: str, event_type: str, time: str) -> dict[str, Any]:
    parent_id = openlineage_ids.task_run_id(NAMESPACE, dag_id, "load", 2, LOGICAL, 3)
    root_id = openlineage_ids.dag_run_id(NAMESPACE, dag_id, LOGICAL, 0)
    facets: dict[str, Any] = {"parent": {
        "run": {"runId": parent_id}, "job": {"namespace": NAMESPACE, "name": f"{dag_id}.load"},
        "root": {"run": {"runId": root_id}, "job": {"namespace": NAMESPACE, "name": dag_id}}}}
    source: dict[str, Any] = {"namespace": "s3://lake", "name": "raw/events",
                              "facets": {"schema": {"fields": [{"name": "id", "type": "long"}]}}}
    outputs: list[dict[str, Any]] = []
    if event_type == "FAIL":
        facets["errorMessage"] = {"message": "stage 3 failed: token=abcd1234secret", "programmingLanguage": "scala"}
        source = {**source, "inputFacets": {"inputStatistics": {"rowCount": 1000, "size": 4096}}}
        outputs = [{"namespace": "s3://lake", "name": "clean/events",
                    "outputFacets": {"outputStatistics": {"rowCount": 990}}}]
    return {"eventType": event_type, "eventTime": time, "producer": "https://example.com/spark-job",
            "run": {"runId": run_id, "facets": facets}, "job": {"namespace": "spark", "name": "clean_events"},
            "inputs": [source], "outputs": outputs}


def _post_lineage(tracker: Any, event: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(tracker.url + "/api/v1/lineage", data=json.dumps(event), timeout=60,
                             headers={"Content-Type": "application/json", **tracker.headers()})
    assert response.status_code == 200, response.text
    return response.json()


def _view(tracker: Any, dag_id: str) -> dict[str, Any]:
    """The attempt as the API shows it, without the ids that differ between the scenarios."""
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)
    assert len(page["items"]) == 1, page
    attempts = tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")["task_attempts"]
    assert [(a["task_id"], a["try_number"], a["map_index"]) for a in attempts] == [("load", 2, 3)]
    attempt = attempts[0]
    children = [{k: c[k] for k in ("job_namespace", "job_name", "state", "start_time", "end_time", "error")}
                | {"datasets": c["datasets"]} for c in attempt["openlineage_runs"]]
    datasets = sorted((d["operation"], d["uri"], d["rows"], d["bytes"], d["schema"], d["time"])
                      for d in attempt["datasets"])
    return {"state": attempt["state"], "children": children, "datasets": datasets}


def test_any_order_same_attempt_and_replay_changes_nothing(tracker: Any, unique: str) -> None:
    views = []
    for n, order in enumerate(itertools.permutations(("attempt", "START", "FAIL"))):
        dag_id = f"olo_{unique}_{n}"
        run_id = str(uuid.uuid4())
        parts = {"attempt": lambda d=dag_id: tracker.post_events(_attempt_events(d)),
                 "START": lambda d=dag_id, r=run_id: _post_lineage(tracker, _child(d, r, "START",
                                                                                  "2026-04-02T06:32:00Z")),
                 "FAIL": lambda d=dag_id, r=run_id: _post_lineage(tracker, _child(d, r, "FAIL",
                                                                                 "2026-04-02T06:34:30Z"))}
        for part in order:
            parts[part]()
        first = _view(tracker, dag_id)
        for part in order:  # the whole scenario again: at-least-once delivery
            parts[part]()
        assert _view(tracker, dag_id) == first, order
        views.append((order, first))
    expected = views[0][1]
    for order, view in views[1:]:
        assert view == expected, order
    child = expected["children"][0]
    assert child["state"] == "failed" and child["start_time"] == "2026-04-02T06:32:00.000000Z"
    assert child["end_time"] == "2026-04-02T06:34:30.000000Z"
    assert "stage 3 failed" in child["error"]["message"] and "abcd1234secret" not in json.dumps(expected)
    # one dataset per direction, merged: START's schema and FAIL's statistics
    assert [(d[0], d[1], d[2], d[3], len(d[4] or [])) for d in expected["datasets"]] == [
        ("read", "s3://lake/raw/events", 1000, 4096, 1), ("write", "s3://lake/clean/events", 990, None, 0)]
    assert expected["datasets"][0][5] == "2026-04-02T06:32:00.000000Z"  # the first event that read it


def test_child_without_parent_facet_or_with_a_foreign_parent(tracker: Any, unique: str) -> None:
    """No parent: nothing to file it under (ignored, not an error). A parent that is not a provider id: pending."""
    lone = _child(f"olf_{unique}", str(uuid.uuid4()), "COMPLETE", "2026-04-02T06:34:30Z")
    del lone["run"]["facets"]["parent"]
    assert _post_lineage(tracker, lone)["ignored"] == 1
    foreign = _child(f"olf_{unique}", str(uuid.uuid4()), "COMPLETE", "2026-04-02T06:34:30Z")
    foreign["run"]["facets"]["parent"]["run"]["runId"] = str(uuid.uuid4())
    assert _post_lineage(tracker, foreign)["pending"] == 1
    listed = tracker.get_json("/api/v1/lineage/pending", limit=1000)["items"]
    assert [i["job_name"] for i in listed if i["run_id"] == foreign["run"]["runId"]] == ["clean_events"]


def test_two_instances_with_the_same_attempt_leave_the_child_pending(tracker: Any, unique: str) -> None:
    """The provider's ids carry no instance: when two Airflow instances have the attempt, runlink never guesses."""
    dag_id = f"ola_{unique}"
    for uid in ("airflow-east", "airflow-west"):
        events = _attempt_events(dag_id)
        for event in events:
            event["context"]["uid"] = uid
            event["id"] += uid
        assert tracker.post_events(events).status_code == 202
    child = _child(dag_id, str(uuid.uuid4()), "COMPLETE", "2026-04-02T06:34:30Z")
    answer = _post_lineage(tracker, child)
    assert answer["pending"] == 1 and answer["children"] == 0
    listed = tracker.get_json("/api/v1/lineage/pending", limit=1000)["items"]
    assert [i["event_type"] for i in listed if i["run_id"] == child["run"]["runId"]] == ["COMPLETE"]
