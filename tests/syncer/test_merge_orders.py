"""Runtime events (the Airflow listener's, captured from the real standalone) and synced records of the same task
attempts merge into one attempt each, whichever reaches the tracker first."""

from __future__ import annotations

from typing import Any

import pytest
from syncer_helpers import DAG_ID, UID_A, airflow_truth, monitor_once, register, tracker_view

pytestmark = pytest.mark.airflow


def _post_runtime(tracker: Any, events: list[dict[str, Any]]) -> None:
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text


def _tree(tracker: Any, run_id: str) -> dict[str, Any]:
    items = tracker.get_json("/api/v1/dag-runs", dag_id=DAG_ID, run_id=run_id, instance=UID_A)["items"]
    assert len(items) == 1, items
    return tracker.get_json(f"/api/v1/dag-runs/{items[0]['id']}")


def test_runtime_and_sync_merge_in_both_orders(airflow_a, finished_run, recorder, tracker_factory) -> None:
    run_id = finished_run["run_id"]
    runtime = recorder.of_run(DAG_ID, run_id)
    # the listener's facts (plus the client's own agent_health reports, which carry the context too)
    assert {e["source"]["agent"] for e in runtime if e["type"] != "agent_health"} == {"airflow"}
    assert all((e.get("context") or {}).get("uid") == UID_A for e in runtime if e["type"] != "agent_health")

    runtime_first = tracker_factory(backend="sqlite")
    register(runtime_first, "main", airflow_a, UID_A)
    _post_runtime(runtime_first, runtime)
    monitor_once(runtime_first, "main")

    sync_first = tracker_factory(backend="sqlite")
    register(sync_first, "main", airflow_a, UID_A)
    monitor_once(sync_first, "main")
    _post_runtime(sync_first, runtime)

    truth = airflow_truth(airflow_a, DAG_ID)
    for tracker in (runtime_first, sync_first):
        # one attempt per Airflow try, no placeholder left over, Airflow's final states
        assert tracker_view(tracker, DAG_ID, UID_A) == truth
    a, b = _tree(runtime_first, run_id), _tree(sync_first, run_id)
    assert a == b  # the same tree whatever the order
    attempts = {(t["task_id"], t["try_number"]): t for t in a["task_attempts"]}
    assert not any(t["placeholder"] for t in a["task_attempts"])
    # fields only the runtime side knows survive next to the syncer's state
    ok = attempts[("ok", 1)]
    assert ok["state"] == "success" and ok["pid"] and ok["hostname"]
    assert ok.get("params") is not None or ok.get("return_value") is not None
    # the first try of the retried task: Airflow's word wins the final state
    assert attempts[("flaky", 1)]["state"] in ("failed", "up_for_retry")
    assert attempts[("flaky", 2)]["state"] == "success"
    assert a["state"] == truth[run_id]["state"]
