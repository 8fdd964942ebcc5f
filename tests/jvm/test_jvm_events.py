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
             "spark_executor", "sql_query", "agent_health"}


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
