"""The OpenAPI document gives every route a response schema, and the answers of a real tracker conform to them:
schemathesis (dev extra) with its response-schema check, path parameters pointing at real stored objects so
the detail routes answer 200 (not only 404)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]


def test_every_operation_documents_its_success_answer() -> None:
    from runlink.tracker.app import create_app
    from runlink.tracker.openapi_doc import undocumented
    from runlink.tracker.settings import TrackerSettings

    spec = create_app(TrackerSettings(home=Path(tempfile.mkdtemp(prefix="runlink-openapi-")))).openapi()
    assert undocumented(spec) == []
    assert spec["paths"]["/api/v1/dag-runs"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["items"]["type"] == "array"
    assert "content" not in spec["paths"]["/api/v1/alert-rules/{pk}"]["delete"]["responses"]["204"]


def _seed(tracker: Any) -> dict[str, str]:
    """One DAG run with a task attempt, a Spark app (job, stage, query), metrics, a dataset; a rule; a token."""
    dag_id = f"st_{uuid.uuid4().hex[:8]}"
    ctx = {"dag_id": dag_id, "dag_run_id": "r1", "task_id": "t", "try_number": "1",
           "logical_date": "2026-01-01T00:00:00Z"}
    spark = {"app_id": f"app-{dag_id}"}

    def event(kind: str, payload: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"v": 1, "id": uuid.uuid4().hex, "type": kind, "time": "2026-01-01T00:00:00Z",
                "source": {"agent": "python"}, "context": ctx, "payload": payload, **extra}

    events = [event("dag_run.start", {"state": "running"}),
              event("task_attempt.end", {"state": "failed", "error": {"message": "boom"},
                                         "log_url": "http://airflow/log"}),
              event("metric", {"key": "rows", "value": 3}),
              event("dag.definition", {"dag_id": dag_id, "tasks": [{"task_id": "t"}]}),
              event("dataset", {"operation": "write", "path": "s3://bucket/out", "rows": 3}),
              event("spark_app.start", {"name": "etl"}, spark=spark),
              event("spark_job.end", {"job_id": 1, "result": "failed", "failure_reason": "x"}, spark=spark),
              event("spark_stage.completed", {"stage_id": 1, "attempt_id": 0, "status": "succeeded",
                                              "metrics": {"executor_run_time_ms": 5}}, spark=spark),
              event("sql_query", {"success": True, "inputs": [{"operation": "read", "path": "s3://bucket/in"}]},
                    spark=spark)]
    assert tracker.post_events(events).status_code == 202
    run = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"][0]
    tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
    attempt = tree["task_attempts"][0]
    app = attempt["spark_apps"][0]
    dataset = tracker.get_json("/api/v1/views/datasets")["items"][0]
    rule = requests.post(tracker.url + "/api/v1/alert-rules", json={"name": "r", "kind": "task_failed"},
                         headers=tracker.headers(), timeout=30).json()
    return {"run": run["id"], "attempt": attempt["id"], "app": app["id"], "dag_id": dag_id,
            "dataset": dataset["id"], "rule": rule["id"]}


def _config(ids: dict[str, str]) -> str:
    fixed = {
        "/api/v1/dag-runs/{run_pk}": {"run_pk": ids["run"]},
        "/api/v1/task-attempts/{attempt_pk}": {"attempt_pk": ids["attempt"]},
        "/api/v1/spark-apps/{app_pk}": {"app_pk": ids["app"]},
        "/api/v1/views/dag-runs/{pk}": {"pk": ids["run"]},
        "/api/v1/views/task-attempts/{pk}": {"pk": ids["attempt"]},
        "/api/v1/views/spark-apps/{pk}": {"pk": ids["app"]},
        "/api/v1/views/spark-apps/{pk}/stages/{stage_id}/{attempt_id}": {"pk": ids["app"], "stage_id": 1,
                                                                          "attempt_id": 0},
        "/api/v1/views/dags/{dag_id}": {"dag_id": ids["dag_id"]},
        "/api/v1/views/datasets/{pk}": {"pk": ids["dataset"]},
        "/api/v1/alert-rules/{pk}": {"pk": ids["rule"]},
    }
    blocks = []
    for path, params in fixed.items():
        values = ", ".join(f"{k} = {json.dumps(v)}" for k, v in params.items())
        # every method but DELETE (the rule must survive to be read and patched)
        blocks.append(f'[[operations]]\ninclude-path = "{path}"\nexclude-method = "DELETE"\n'
                      f"parameters = {{ {values} }}\n")
    return "\n".join(blocks)


def test_schemathesis_finds_no_response_schema_violation(tracker_factory: Any, tmp_path: Path) -> None:
    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "0"])
    ids = _seed(tracker)
    config = tmp_path / "schemathesis.toml"
    config.write_text(_config(ids), "utf-8")
    result = subprocess.run(
        [str(Path(sys.executable).parent / "schemathesis"), "--config-file", str(config), "run",
         tracker.url + "/openapi.json", "-H", f"Authorization: Bearer {tracker.token}",
         "--checks", "response_schema_conformance", "-n", "15", "-w", "1", "--seed", "7",
         "--phases", "examples,coverage,fuzzing", "--no-color"],
        capture_output=True, text=True, timeout=1500, cwd=str(tmp_path))
    output = result.stdout + result.stderr
    summary = output[output.find("SUMMARY"):]
    operations = re.search(r"Tested: (\d+)", summary)
    cases = re.search(r"(\d+) generated", summary)
    print(f"\nschemathesis: {operations.group(1) if operations else '?'} operations, "
          f"{cases.group(1) if cases else '?'} cases, "
          f"{output.count('Response violates schema')} response-schema violations")
    assert operations and int(operations.group(1)) >= 40, summary[-3000:]
    assert "Response violates schema" not in output, output[-6000:]
    assert "Failures:" not in summary, summary[-3000:]
