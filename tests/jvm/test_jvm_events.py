"""The JSON the JVM listeners really send validates against the protocol schema.

The JUnit suite (scripts/build-jar.sh --test) feeds both listeners Spark's own event objects and plan shapes
and writes every event they sent to jvm-listener/build/test-events/jvm-events.json; this test validates that
batch with runlink.protocol.validate_batch, the tracker's own check.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from runlink.protocol.events import validate_batch

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "jvm-listener" / "build" / "test-events" / "jvm-events.json"
JVM_TYPES = {"spark_app.start", "spark_app.end", "spark_job.start", "spark_job.end", "spark_stage.completed",
             "spark_executor", "sql_query", "agent_health", "spark_streaming_query.start",
             "spark_streaming_query.progress", "spark_streaming_query.end"}


def _samples() -> dict:
    # incremental: a no-op when neither the listener nor its tests changed since the last JUnit run
    args = ["bash", str(ROOT / "scripts" / "build-jar.sh"), "--test"]
    if not SAMPLES.exists():
        args.append("--force")
    res = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(SAMPLES.read_text())


def test_every_jvm_event_type_validates() -> None:
    batch = _samples()
    events = validate_batch(batch)
    assert {e["type"] for e in events} == JVM_TYPES
    for event in events:
        assert event["source"]["agent"] == "jvm"
        if event["type"] != "agent_health":
            assert event["spark"]["app_id"]


def test_stage_metrics_use_every_schema_field() -> None:
    from runlink.protocol.events import load_schema

    names = set(load_schema()["definitions"]["stage_metrics"]["properties"])
    stage = next(e for e in _samples()["events"] if e["type"] == "spark_stage.completed")
    assert set(stage["payload"]["metrics"]) == names


def test_the_tracker_ingests_them_and_a_replay_changes_nothing(tracker) -> None:
    """The real tracker (SQLite and PostgreSQL) accepts the JVM's batch, gzip as the JVM sends it."""
    from runlink.ids import spark_app_id

    events = _samples()["events"]
    first = tracker.post_events(events, gzip=True)
    assert first.status_code == 202, first.text
    again = tracker.post_events(events, gzip=True)
    assert again.status_code == 202 and again.json()["duplicates"] == len(events), again.text

    app_id = next(e["spark"]["app_id"] for e in events if e["type"] == "spark_app.start")
    app = tracker.get_json(f"/api/v1/spark-apps/{spark_app_id(app_id)}")
    assert app["name"] == "etl-app"
    assert {j["job_id"] for j in app["jobs"]} == {3, 4}
    assert len(app["stages"]) == 2
    assert app["task_attempt_pk"], "the app links under its Airflow task attempt"
    # a stage's call site and task distribution, as the database builds the stage JSON on each backend
    stage = next(s for s in app["stages"] if s["stage_id"] == 0)
    assert stage["callsite"] == "app.py:12"
    assert stage["distribution"]["tasks"] == 3 and stage["distribution"]["slowest_task"]["host"] == "host-a"
    assert stage["task_skew"] == stage["distribution"]["skew"]["duration_ms"] > 1


def test_the_spark_pages_show_call_sites_and_task_distributions(tracker_factory) -> None:
    """The Spark application page's stage table and the stage page, rendered from the JVM's events."""
    from runlink.ids import spark_app_id

    tracker = tracker_factory(open_reads=True)
    events = _samples()["events"]
    assert tracker.post_events(events, gzip=True).status_code == 202
    app_pk = spark_app_id(next(e["spark"]["app_id"] for e in events if e["type"] == "spark_app.start"))
    app_page = tracker.get(f"/ui/spark-apps/{app_pk}", token=None)
    assert app_page.status_code == 200
    assert "Task skew" in app_page.text and "app.py:12" in app_page.text
    stage_page = tracker.get(f"/ui/spark-apps/{app_pk}/stages/0/0", token=None)
    assert stage_page.status_code == 200
    page = stage_page.text
    assert "Task distribution" in page and "host-a" in page and "app.py:12" in page
    failed = tracker.get(f"/ui/spark-apps/{app_pk}/stages/1/0", token=None).text
    assert "TaskResultLost (result lost from block manager)" in failed
