"""Task states beyond success/failure, end to end (real Airflow, real tracker): a deferral and its resumption
(dag.test() runs the trigger in line, no triggerer needed), a task that skips itself, tasks that never run
(skipped by a ShortCircuitOperator, upstream_failed), and a state set outside the task process (Airflow 3's
REST API, what the UI calls)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from airflow_runs import airflow_major, attempts, run_dag, wait_for_tree

pytestmark = pytest.mark.airflow


def _state_history(tracker: Any, attempt_id: str) -> list[tuple[str, str]]:
    """(agent, state) of every state event of one attempt, in event-time order.

    The API gives the merged state only; the history is what the tracker stored (its SQLite database).
    """
    path = tracker.db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) as conn:
        rows = conn.execute(
            "SELECT se.agent, se.payload FROM state_events se JOIN contexts c ON c.id = se.context_id "
            "WHERE c.attempt_pk = ? AND se.kind = 'task_attempt' ORDER BY se.time, se.event_id",
            (attempt_id,),
        ).fetchall()
    return [(agent, json.loads(payload).get("state")) for agent, payload in rows]


@pytest.fixture(scope="module")
def states_run(airflow_tracker: Any) -> tuple[Any, dict]:
    """One run of rl_states, shared by the tests of this module (each reads a different part of it)."""
    dag_run = run_dag("rl_states")

    def ready(tree: dict) -> bool:
        want = {"deferred": "success", "skip_self": "skipped", "gate": "success", "after_gate": "skipped",
                "fails": "failed", "after_fails": "upstream_failed"}
        got = {task: [a.get("state") for a in attempts(tree, task)] for task in want}
        return all(got[task] and got[task][-1] == state for task, state in want.items()) and \
            tree.get("state") == "failed" and bool(attempts(tree, "deferred")[0]["metrics"])

    return dag_run, wait_for_tree(airflow_tracker, "rl_states", dag_run.run_id, ready)


def test_deferred_then_resumed(airflow_tracker: Any, states_run: tuple[Any, dict]) -> None:
    _, tree = states_run
    (attempt,) = attempts(tree, "deferred")  # a deferral does not make a new try
    assert attempt["try_number"] == 1
    assert attempt["state"] == "success"
    assert attempt["operator"].endswith("WaitBriefly")
    assert attempt["return_value"] == '"resumed after the trigger"'
    assert {m["key"]: m["value"] for m in attempt["metrics"]} == {"resumed": 1}  # logged after the resumption
    states = [state for agent, state in _state_history(airflow_tracker, attempt["id"]) if agent == "airflow"]
    assert states == ["running", "deferred", "resumed", "success"], states


def test_skipped_by_itself_and_by_the_scheduler(states_run: tuple[Any, dict]) -> None:
    _, tree = states_run
    (skip_self,) = attempts(tree, "skip_self")
    assert (skip_self["state"], skip_self["try_number"]) == ("skipped", 1)
    assert skip_self["operator"].endswith("PythonOperator")  # reported by the task process itself
    assert skip_self["error"] is None
    (gate,) = attempts(tree, "gate")
    assert gate["state"] == "success"  # the short-circuit itself succeeds
    # never ran in a task process: reported from the DAG run hook when the run ended
    (after_gate,) = attempts(tree, "after_gate")
    assert after_gate["state"] == "skipped"
    (after_fails,) = attempts(tree, "after_fails")
    assert after_fails["state"] == "upstream_failed"
    (fails,) = attempts(tree, "fails")
    assert fails["state"] == "failed" and fails["error"]["type"].endswith("RuntimeError")


def test_state_set_through_the_rest_api(airflow_tracker: Any, states_run: tuple[Any, dict],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A user marks the failed task success in the UI: Airflow 3's API server calls the task hooks with its ORM
    task instance (no attempt open there), and the tracker shows the new state on the same attempt."""
    if airflow_major() < 3:
        pytest.skip("Airflow 2.11's REST API calls no listener on a manual state change; there the syncer "
                    "(`runlink monitor`) reports it")
    from fastapi.testclient import TestClient

    monkeypatch.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "True")
    from airflow.api_fastapi.app import create_app

    dag_run, _ = states_run
    with TestClient(create_app(apps="core")) as client:
        response = client.patch(
            f"/api/v2/dags/rl_states/dagRuns/{dag_run.run_id}/taskInstances/fails",
            json={"new_state": "success"},
        )
    assert response.status_code == 200, response.text[:2000]

    tree = wait_for_tree(airflow_tracker, "rl_states", dag_run.run_id,
                         lambda t: [a["state"] for a in attempts(t, "fails")] == ["success"])
    (fails,) = attempts(tree, "fails")
    assert fails["try_number"] == 1
    history = _state_history(airflow_tracker, fails["id"])
    assert [state for _, state in history][-2:] == ["failed", "success"], history
