"""runlink -> OpenLineage export: to a file (JSON lines) and over HTTP to another real tracker's /api/v1/lineage
(an OpenLineage consumer), where the task attempt and the Spark app come back into a run tree."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from support.waiting import wait_for


def _events(unique: str) -> list[dict[str, Any]]:
    ctx = {"dag_id": f"exp_{unique}", "dag_run_id": "r1", "logical_date": "2026-02-01T00:00:00Z", "task_id": "t",
           "try_number": "1"}
    src = {"agent": "airflow"}
    return [
        {"v": 1, "id": f"e1-{unique}", "type": "task_attempt.start", "time": "2026-02-01T00:00:01Z", "source": src,
         "context": ctx, "payload": {"state": "running"}},
        {"v": 1, "id": f"e2-{unique}", "type": "spark_app.start", "time": "2026-02-01T00:00:02Z",
         "source": {"agent": "jvm"}, "context": ctx, "spark": {"app_id": f"app-{unique}"},
         "payload": {"name": f"job_{unique}", "master": "local[1]"}},
        {"v": 1, "id": f"e3-{unique}", "type": "sql_query", "time": "2026-02-01T00:00:03Z",
         "source": {"agent": "jvm"}, "context": ctx, "spark": {"app_id": f"app-{unique}"},
         "payload": {"success": True, "action": "save", "outputs": [
             {"operation": "write", "path": "/out/x", "rows": 5, "schema": [{"name": "a", "type": "int"}]}]}},
        {"v": 1, "id": f"e4-{unique}", "type": "task_attempt.end", "time": "2026-02-01T00:00:04Z", "source": src,
         "context": ctx, "payload": {"state": "success"}},
    ]


def test_export_to_file(tracker_factory: Any, tmp_path: Path, unique: str) -> None:
    out = tmp_path / "ol.jsonl"
    tracker = tracker_factory(backend="sqlite", extra_args=["--openlineage-export", f"file://{out}"])
    assert tracker.post_events(_events(unique)).status_code == 202
    lines = wait_for(lambda: out.exists() and len(out.read_text().splitlines()) >= 4 and out.read_text().splitlines(),
                     "four exported events in the file", 60)
    events = [json.loads(x) for x in lines]
    kinds = [(e["eventType"], e["job"]["name"]) for e in events]
    assert ("START", f"exp_{unique}.t") in kinds and ("COMPLETE", f"exp_{unique}.t") in kinds
    app = [e for e in events if "spark_applicationDetails" in e["run"]["facets"]][0]
    assert app["run"]["facets"]["parent"]["job"]["name"] == f"exp_{unique}.t"
    sql = [e for e in events if e["outputs"]][0]
    assert sql["outputs"][0]["outputFacets"]["outputStatistics"]["rowCount"] == 5


def test_export_over_http_into_another_tracker(tracker_factory: Any, unique: str) -> None:
    consumer = tracker_factory(backend="sqlite")
    import os

    os.environ["RUNLINK_OPENLINEAGE_API_KEY"] = consumer.make_token("ingest")
    try:
        producer = tracker_factory(backend="sqlite", extra_args=["--openlineage-export", consumer.url])
    finally:
        os.environ.pop("RUNLINK_OPENLINEAGE_API_KEY", None)
    assert producer.post_events(_events(unique)).status_code == 202

    def tree() -> Any:
        page = consumer.get_json("/api/v1/dag-runs", dag_id=f"exp_{unique}")
        if not page["items"]:
            return None
        t = consumer.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")
        a = t["task_attempts"]
        return t if a and a[0]["state"] == "success" and a[0]["spark_apps"] else None

    t = wait_for(tree, "the exported run in the consumer", 60)
    assert [a["app_id"] for a in t["task_attempts"][0]["spark_apps"]] == [f"app-{unique}"]
