"""POST /api/v1/lineage against a real tracker (SQLite and PostgreSQL): OpenLineage events land in the same run
tree as runlink's own events, in any order, replay-safe, capped rather than rejected."""

from __future__ import annotations

import json
from typing import Any

import ol_events as ol
import pytest
import requests

T0 = "2026-03-01T10:00:00.000000+00:00"


def post_lineage(tracker: Any, body: Any, token: str | None = "") -> requests.Response:
    return requests.post(tracker.url + "/api/v1/lineage", data=json.dumps(body), timeout=60,
                         headers={"Content-Type": "application/json", **tracker.headers(token)})


def tree_of(tracker: Any, dag_id: str) -> dict[str, Any]:
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)
    assert len(page["items"]) == 1, page
    return tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")


def _scenario(unique: str) -> dict[str, Any]:
    dag_id = f"ol_dag_{unique}"
    task_run, dag_run, app_run, sql_run = ol.new_id(), ol.new_id(), ol.new_id(), ol.new_id()
    app_id = f"local-{unique}"
    common = {"dag_id": dag_id, "task_id": "transform", "run_id": "manual__2026-03-01T10:00:00+00:00",
              "logical_date": T0, "ol_run_id": task_run, "dag_ol_run_id": dag_run}
    out = ol.file_dataset(f"/data/{unique}/out.parquet", columns=3, rows=42, size=1234, output=True)
    inp = ol.file_dataset(f"/data/{unique}/in.parquet", columns=2)
    return {
        "dag_id": dag_id, "app_id": app_id, "task_run": task_run,
        "task": [ol.airflow_task("START", "2026-03-01T10:00:01+00:00", **common),
                 ol.airflow_task("COMPLETE", "2026-03-01T10:00:30+00:00", **common)],
        "app": [ol.spark_app("START", "2026-03-01T10:00:05+00:00", app_id=app_id, app_name=f"app_{unique}",
                             ol_run_id=app_run, parent=("default", f"{dag_id}.transform", task_run)),
                ol.spark_app("COMPLETE", "2026-03-01T10:00:25+00:00", app_id=app_id, app_name=f"app_{unique}",
                             ol_run_id=app_run, parent=("default", f"{dag_id}.transform", task_run))],
        "sql": [ol.spark_sql("START", "2026-03-01T10:00:10+00:00", app_name=f"app_{unique}",
                             app_ol_run_id=app_run, ol_run_id=sql_run, inputs=[inp]),
                ol.spark_sql("COMPLETE", "2026-03-01T10:00:12.500000+00:00", app_name=f"app_{unique}",
                             app_ol_run_id=app_run, ol_run_id=sql_run, inputs=[inp], outputs=[out],
                             plan=[{"class": "InsertIntoHadoopFsRelationCommand"}])],
    }


def _check_tree(tracker: Any, s: dict[str, Any]) -> None:
    tree = tree_of(tracker, s["dag_id"])
    attempts = tree["task_attempts"]
    assert [(a["task_id"], a["try_number"], a["state"]) for a in attempts] == [("transform", 1, "success")]
    apps = attempts[0]["spark_apps"]
    assert [a["app_id"] for a in apps] == [s["app_id"]], json.dumps(tree)[:3000]
    app = apps[0]
    assert app["state"] == "succeeded" and app["master"] == "local[1]"
    queries = app["queries"]
    assert len(queries) == 1 and queries[0]["success"] is True
    assert queries[0]["duration_ms"] == pytest.approx(2500.0)
    outputs = queries[0]["outputs"]
    assert outputs and outputs[0]["rows"] == 42 and outputs[0]["bytes"] == 1234
    assert outputs[0]["path"].endswith("/out.parquet") and len(outputs[0]["schema"]) == 3
    # the app sits under the Airflow task only: a run of its own made while the parent was unknown is left empty
    for run in tracker.get_json("/api/v1/dag-runs", dag_id=f"spark:app_{s['dag_id'][7:]}")["items"]:
        shell = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
        assert all(not a["spark_apps"] for a in shell["task_attempts"]) and not shell["spark_apps"]


@pytest.mark.parametrize("order", ["airflow_first", "spark_first", "sql_before_app"])
def test_spark_and_airflow_events_link_in_any_order(tracker: Any, unique: str, order: str) -> None:
    s = _scenario(unique + order[:3])
    batches = {
        "airflow_first": [s["task"], s["app"], s["sql"]],
        "spark_first": [s["app"], s["sql"], s["task"]],
        "sql_before_app": [s["sql"], s["app"][:1], s["task"], s["app"][1:]],
    }[order]
    for batch in batches:
        response = post_lineage(tracker, batch)
        assert response.status_code == 200, response.text
    _check_tree(tracker, s)
    # the same events again, one at a time and as one array: nothing changes
    for event in s["task"] + s["app"] + s["sql"]:
        again = post_lineage(tracker, event)
        assert again.status_code == 200 and again.json()["accepted"] == 0, again.text
    _check_tree(tracker, s)


def test_merges_with_runlink_own_events(tracker: Any, unique: str) -> None:
    """runlink's Airflow listener and JVM listener report the same attempt and app: one attempt, one app."""
    s = _scenario(unique)
    ctx = {"dag_id": s["dag_id"], "dag_run_id": "manual__2026-03-01T10:00:00+00:00",
           "execution_date": "2026-03-01T10:00:00+00:00", "task_id": "transform", "try_number": "1"}
    source = {"agent": "airflow", "version": "t", "host": "h", "pid": 1}
    own = [
        {"v": 1, "id": f"own-start-{unique}", "type": "task_attempt.start", "time": "2026-03-01T10:00:00.9Z",
         "source": source, "context": ctx, "payload": {"state": "running", "hostname": "worker-7", "pid": 99}},
        {"v": 1, "id": f"own-app-{unique}", "type": "spark_app.start", "time": "2026-03-01T10:00:05Z",
         "source": {**source, "agent": "jvm"}, "context": ctx, "spark": {"app_id": s["app_id"]},
         "payload": {"name": f"app_{unique}", "spark_version": "4.2.0"}},
    ]
    assert tracker.post_events(own).status_code == 202
    assert post_lineage(tracker, s["task"] + s["app"] + s["sql"]).status_code == 200
    tree = tree_of(tracker, s["dag_id"])
    assert len(tree["task_attempts"]) == 1
    attempt = tree["task_attempts"][0]
    assert attempt["hostname"] == "worker-7" and attempt["log_url"].startswith("http://af/")  # both sources
    assert [a["app_id"] for a in attempt["spark_apps"]] == [s["app_id"]]


def test_failed_task_error_and_masking(tracker: Any, unique: str) -> None:
    dag_id = f"ol_fail_{unique}"
    args = {"dag_id": dag_id, "task_id": "boom", "run_id": f"manual__{unique}", "logical_date": None,
            "ol_run_id": ol.new_id(), "dag_ol_run_id": ol.new_id()}
    response = post_lineage(tracker, [ol.airflow_task("START", "2026-03-01T11:00:00+00:00", **args),
                                      ol.airflow_task("FAIL", "2026-03-01T11:00:02+00:00", **args,
                                                      error="kaboom password=hunter2")])
    assert response.status_code == 200, response.text
    attempt = tree_of(tracker, dag_id)["task_attempts"][0]
    assert attempt["state"] == "failed"
    assert "kaboom" in attempt["error"]["message"] and "hunter2" not in json.dumps(attempt)


def test_oversized_input_is_capped_not_rejected(tracker: Any, unique: str) -> None:
    """A 10,000-column schema and a 10 MB plan: stored capped (flags set), the event is not rejected."""
    s = _scenario(unique)
    wide = ol.file_dataset(f"/data/{unique}/wide.parquet", columns=10000, rows=1, size=1, output=True)
    huge_plan = [{"class": "Project", "text": "x" * (10 * 1024 * 1024)}]
    s["sql"][1] = ol.spark_sql("COMPLETE", "2026-03-01T10:00:12.500000+00:00", app_name=f"app_{unique}",
                               app_ol_run_id=s["app"][0]["run"]["runId"], ol_run_id=s["sql"][0]["run"]["runId"],
                               outputs=[wide], plan=huge_plan)
    response = post_lineage(tracker, s["task"] + s["app"] + s["sql"])
    assert response.status_code == 200, response.text[:500]
    query = tree_of(tracker, s["dag_id"])["task_attempts"][0]["spark_apps"][0]["queries"][0]
    assert query["plan_truncated"] is True and len(query["plan_summary"]) <= 1048576
    out = query["outputs"][0]
    assert len(out["schema"]) == 1000 and out["schema_truncated"] is True
    # the same through runlink's own endpoint: a dataset event with 10,000 columns is capped, not refused
    event = {"v": 1, "id": f"wide-{unique}", "type": "dataset", "time": "2026-03-01T10:00:13Z",
             "source": {"agent": "python"}, "context": {"dag_id": s["dag_id"], "task_id": "transform",
                                                        "execution_date": T0, "try_number": "1"},
             "payload": {"operation": "write", "path": f"/data/{unique}/wide2",
                         "schema": [{"name": f"c{i}", "type": "int"} for i in range(10000)]}}
    assert tracker.post_events([event]).status_code == 202
    datasets = tree_of(tracker, s["dag_id"])["task_attempts"][0]["datasets"]
    wide2 = [d for d in datasets if (d.get("path") or "").endswith("wide2")][0]
    assert len(wide2["schema"]) == 1000 and wide2["schema_truncated"] is True


def test_bad_requests_store_nothing(tracker: Any, unique: str) -> None:
    good = ol.airflow_task("START", "2026-03-01T12:00:00+00:00", dag_id=f"ol_bad_{unique}", task_id="t",
                           run_id="r1", logical_date=None, ol_run_id=ol.new_id(), dag_ol_run_id=ol.new_id())
    raw = requests.post(tracker.url + "/api/v1/lineage", data=b"{not json", headers=tracker.headers(), timeout=30)
    assert raw.status_code == 400
    assert post_lineage(tracker, []).status_code == 422
    bad = post_lineage(tracker, [good, {"eventType": "START", "run": {"runId": 5}, "job": {"name": "x"}}])
    assert bad.status_code == 422 and bad.json()["detail"]["index"] == 1
    assert tracker.get_json("/api/v1/dag-runs", dag_id=f"ol_bad_{unique}")["items"] == []
    assert post_lineage(tracker, good, token=None).status_code == 401
    assert post_lineage(tracker, good, token=tracker.make_token("read")).status_code == 403
    ingest = post_lineage(tracker, good, token=tracker.make_token("ingest"))
    assert ingest.status_code == 200 and ingest.json()["accepted"] == 1
