"""Alert rules on a task's Spark work and its history, through a real tracker (SQLite and PostgreSQL): "slower than
its history" says what explains it (the diagnosis), skew names the stage by its call site, spill its bytes."""

from __future__ import annotations

from typing import Any

import requests

from support.cli import runlink_cli
from support.task_history import GROUP_SITE, READ_SITE, task_run
from support.waiting import wait_for


def _rule(tracker: Any, **body: Any) -> dict[str, Any]:
    response = requests.post(tracker.url + "/api/v1/alert-rules", json=body, headers=tracker.headers(), timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def _alerts(tracker: Any, rule_id: str, ready: Any) -> list[dict[str, Any]]:
    """The rule's alerts once `ready(items)` holds (the engine evaluates after ingest has answered)."""
    return wait_for(lambda: tracker.get_json("/api/v1/alerts", rule_id=rule_id)["items"], f"alerts of {rule_id}",
                    ready=ready)


def _post(tracker: Any, events: list[dict[str, Any]]) -> None:
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text


def test_slower_skew_and_spill_fire_with_their_explanation(tracker: Any, unique: str) -> None:
    dag_id = f"hist_{unique}"
    slower = _rule(tracker, name="slower", kind="slower", dag_id=dag_id, params={"k": 2})
    skew = _rule(tracker, name="skew", kind="skew", dag_id=dag_id, params={"ratio": 5})
    spill_id = runlink_cli(tracker, "alerts", "add", "spill", "--kind", "spill", "--dag-id", dag_id,
                           "--param", f"min_bytes={1 << 30}").stdout.strip()
    spill = {"id": spill_id}
    assert slower["params"] == {"k": 2, "n": 10, "min_history": 3}
    for index in range(5):
        _post(tracker, task_run(dag_id, index))
    _post(tracker, task_run(dag_id, 5, grown=True))

    (fired,) = _alerts(tracker, slower["id"], lambda items: len(items) == 1)
    assert fired["state"] == "open" and fired["value"] > fired["bound"]
    assert fired["title"].startswith("Slower than its history")
    message = fired["message"]
    assert f"'{GROUP_SITE}'" in message and "skew" in message
    assert f"'{READ_SITE}'" in message and "spill appeared" in message and "input grew" in message
    (skewed,) = _alerts(tracker, skew["id"], lambda items: len(items) == 1)
    assert GROUP_SITE in skewed["title"] and "estimated" in skewed["message"] and skewed["value"] > 10
    (spilled,) = _alerts(tracker, spill["id"], lambda items: len(items) == 1)
    assert READ_SITE in spilled["message"] and spilled["value"] > 2 << 30

    _post(tracker, task_run(dag_id, 6))  # back to normal: all three resolve on their own
    for rule in (slower, skew, spill):
        _alerts(tracker, rule["id"], lambda items: items[0]["state"] == "resolved")


def test_rule_parameters_are_checked(tracker: Any) -> None:
    response = requests.post(tracker.url + "/api/v1/alert-rules", headers=tracker.headers(), timeout=30,
                             json={"name": "x", "kind": "skew", "params": {"ratio": "lots"}})
    assert response.status_code == 422 and "ratio" in response.text
