"""The diagnosis against a task's own history, through a real tracker over HTTP (SQLite and PostgreSQL): five normal
runs, then one with 4x the input (its read stage spills) and a hot key in its groupBy stage."""

from __future__ import annotations

import html
from typing import Any

import pytest

from runlink.protocol import make_event
from support.cli import runlink_cli
from support.task_history import BASE, GROUP_LINE, GROUP_SITE, READ_LINE, READ_SITE, iso, task_run
from support.ui_pages import ui_page


def _attempts(tracker: Any, dag_id: str) -> list[dict[str, Any]]:
    """The task's attempts, oldest run first."""
    runs = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id, limit=20)["items"]
    out = []
    for run in reversed(runs):
        tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
        out.extend(tree["task_attempts"])
    return out


def _post(tracker: Any, events: list[dict[str, Any]]) -> None:
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text


def _stage_finding(diagnosis: dict[str, Any], callsite: str) -> dict[str, Any]:
    (finding,) = [f for f in diagnosis["findings"] if (f.get("stage") or {}).get("callsite") == callsite]
    return finding


def test_grown_input_hot_key_and_spill_are_named_by_stage(tracker: Any, unique: str) -> None:
    """A listener without call sites or distributions: stages by Spark's names, skew estimated from totals."""
    dag_id = f"diag_{unique}"
    for index in range(5):
        _post(tracker, task_run(dag_id, index))
    _post(tracker, task_run(dag_id, 5, grown=True))
    attempts = _attempts(tracker, dag_id)
    assert len(attempts) == 6
    slow = attempts[-1]

    found = tracker.get_json(f"/api/v1/task-attempts/{slow['id']}/diagnosis")
    assert found["verdict"] == "slower"
    assert found["history"]["attempts"] == 5
    assert found["ratio"] > 2.5 and found["change_s"] > 100
    group = _stage_finding(found, GROUP_SITE)
    assert [c["cause"] for c in group["causes"]] == ["shuffle growth", "skew"]  # the grown input flows on
    skew = group["causes"][1]
    assert skew["estimated"] is True and skew["ratio"] > 10  # one task 100 s, the others 5 s
    assert group["stage"]["matched_by"] == "name" and group["stage"]["matched_runs"] == 5
    read = _stage_finding(found, READ_SITE)
    causes = {c["cause"]: c for c in read["causes"]}
    assert {"input growth", "spill", "shuffle growth"} <= set(causes)
    assert causes["spill"]["how"] == "appeared" and causes["spill"]["after"] > 2 << 30
    assert causes["input growth"]["ratio"] > 3.5
    # ranked by the seconds of the change each explains: the groupBy (+80 s) before the read (+60 s)
    ranked = [f["stage"]["callsite"] for f in found["findings"] if f["kind"] == "stage"]
    assert ranked[:2] == [GROUP_SITE, READ_SITE]
    assert 0.3 < group["share"] < 0.7
    summary = found["summary"]
    assert f"'{GROUP_SITE}'" in summary and "skew" in summary
    assert f"'{READ_SITE}'" in summary and "spill appeared" in summary and "input grew" in summary
    assert found["headline"].startswith("slower")

    usual = tracker.get_json(f"/api/v1/task-attempts/{attempts[4]['id']}/diagnosis", n=3)
    assert usual["verdict"] == "as usual" and usual["history"]["attempts"] == 3
    assert not [f for f in usual["findings"] if f["causes"]]
    first = tracker.get_json(f"/api/v1/task-attempts/{attempts[0]['id']}/diagnosis")
    assert first["verdict"] == "no history" and "no earlier successful run" in first["summary"]

    trends = tracker.get_json(f"/api/v1/task-attempts/{slow['id']}/trends")
    assert [p["attempt_id"] for p in trends["points"]] == [a["id"] for a in attempts]
    durations = [p["value"] for p in trends["series"]["duration_s"]]
    assert durations[-1] > 2.5 * max(durations[:-1])
    assert [p["value"] for p in trends["series"]["metric.rows_out"]] == [100_000, 100_001, 100_002, 100_003,
                                                                         100_004, 400_005]
    spill = [p["value"] for p in trends["series"]["spark.spill_bytes"]]
    assert spill[:-1] == [0] * 5 and spill[-1] > 2 << 30

    view = tracker.get_json(f"/api/v1/views/task-attempts/{slow['id']}")
    assert view["diagnosis"]["summary"] == summary and len(view["trends"]["points"]) == 6
    page = html.unescape(ui_page(tracker, f"/ui/task-attempts/{slow['id']}"))
    history = page[page.index("Compared with its history"):page.index('id="spark-h"')]
    assert summary in history and history.index(GROUP_SITE) < history.index(READ_SITE)
    assert history.count('class="chart fixed"') >= 5  # duration, rows_out, Spark totals
    assert "metric rows_out" in history and "Spark: spill bytes" in history

    run_pk = slow["run_pk"]
    (line,) = tracker.get_json(f"/api/v1/dag-runs/{run_pk}/diagnosis")["items"]
    assert line["attempt_id"] == slow["id"] and "skew" in line["headline"]
    shown = runlink_cli(tracker, "runs", "show", dag_id).stdout
    assert "diagnosis: slower" in shown and GROUP_SITE in shown

    _post(tracker, task_run(dag_id, 6, failed=True))
    failed = _attempts(tracker, dag_id)[-1]
    found = tracker.get_json(f"/api/v1/task-attempts/{failed['id']}/diagnosis")
    assert found["verdict"] == "failed" and "ExecutorLostFailure" in found["summary"]
    assert found["headline"].startswith("failed after 1 min") and "ExecutorLostFailure" in found["headline"]
    (line,) = tracker.get_json(f"/api/v1/dag-runs/{failed['run_pk']}/diagnosis")["items"]
    assert line["verdict"] == "failed"


@pytest.mark.parametrize("older_history", [False, True], ids=["measured", "measured-over-older"])
def test_measured_skew_and_the_users_lines(tracker: Any, unique: str, older_history: bool) -> None:
    """A listener with call sites and task distributions: stages matched and named by the user's line, skew
    measured (not estimated); history from an older listener (Spark's names only) still matches by name."""
    dag_id = f"diagm_{unique}_{int(older_history)}"
    for index in range(5):
        _post(tracker, task_run(dag_id, index, measured=not older_history))
    _post(tracker, task_run(dag_id, 5, grown=True, measured=True))
    slow = _attempts(tracker, dag_id)[-1]
    found = tracker.get_json(f"/api/v1/task-attempts/{slow['id']}/diagnosis")
    assert found["verdict"] == "slower"
    group = _stage_finding(found, GROUP_LINE)
    (skew,) = [c for c in group["causes"] if c["cause"] == "skew"]
    assert skew["estimated"] is False and skew["what"] == "task duration" and skew["ratio"] == 20
    assert group["stage"]["distribution"] is True
    assert group["stage"]["matched_by"] == ("name" if older_history else "callsite")
    read = _stage_finding(found, READ_LINE)
    assert {"input growth", "spill"} <= {c["cause"] for c in read["causes"]}
    assert f"'{GROUP_LINE}'" in found["summary"] and "slowest task 20.0x the median task" in found["summary"]


def test_a_datasets_rows_and_bytes_over_time(tracker: Any, unique: str) -> None:
    table = f"analytics.daily_{unique}"
    for day in range(3):
        when = iso(BASE.replace(day=day + 1))
        ctx = {"dag_id": f"ds_{unique}", "execution_date": when, "task_id": "write", "try_number": "1"}
        _post(tracker, [make_event("dataset", {"operation": "write", "table": table, "rows": 100 * (day + 1),
                                               "bytes": 4096 * (day + 1)}, context=ctx, time=when)])
    (found,) = [d for d in tracker.get_json("/api/v1/views/datasets")["items"] if d.get("table_name") == table
                or table in (d.get("label") or "")]
    view = tracker.get_json(f"/api/v1/views/datasets/{found['id']}")
    assert [p["rows"] for p in view["rows_series"]] == [100, 200, 300]
    assert [p["bytes"] for p in view["bytes_series"]] == [4096, 8192, 12288]
    page = html.unescape(ui_page(tracker, f"/ui/datasets/{found['id']}"))
    assert "Bytes over time" in page and page.count('class="chart fixed"') == 2


def test_unknown_attempt_is_a_404(tracker: Any) -> None:
    assert tracker.get("/api/v1/task-attempts/nope/diagnosis").status_code == 404
    assert tracker.get("/api/v1/task-attempts/nope/trends").status_code == 404
