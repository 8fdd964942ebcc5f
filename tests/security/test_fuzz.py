"""Fuzz the API of a real tracker: schemathesis from its own OpenAPI spec (every operation), plus a structural
fuzzer for the two bulk endpoints, whose protocol schema (if/then per event type) schemathesis cannot generate
from: valid events with random parts replaced by random JSON. The rule: never a 5xx, the server never dies.

RUNLINK_FUZZ_EXAMPLES sets the examples per operation (CI: 10; scripts/reliability.py --full: 100).
Figures are printed (cases tried, 5xx seen) and written to $RUNLINK_FUZZ_REPORT when set."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from json_paths import json_paths, replace_at

EXAMPLES = int(os.environ.get("RUNLINK_FUZZ_EXAMPLES", "10"))
FIGURES: dict[str, Any] = {}


def _report(key: str, value: Any) -> None:
    FIGURES[key] = value
    path = os.environ.get("RUNLINK_FUZZ_REPORT")
    if path:
        Path(path).write_text(json.dumps(FIGURES, indent=1))
    print(f"FUZZ {key}: {value}")


def test_schemathesis_every_operation_no_5xx(tracker_factory: Any, tmp_path: Path) -> None:
    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "0"])
    report_dir = tmp_path / "report"
    cli = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [str(cli), "run", tracker.url + "/openapi.json", "-H", f"Authorization: Bearer {tracker.token}",
         "--checks", "not_a_server_error", "--max-examples", str(EXAMPLES), "--phases", "examples,coverage,fuzzing",
         "--workers", "2", "--request-timeout", "60", "--continue-on-failure", "--report", "junit",
         "--report-dir", str(report_dir), "--no-color"],
        capture_output=True, text=True, timeout=1800, env={**os.environ, "NO_COLOR": "1"},
    )
    out = result.stdout + result.stderr
    match = re.search(r"(\d+) generated", out)
    assert match, out[-4000:]
    generated = int(match.group(1))
    junit = next(report_dir.glob("*.xml"))
    failures = [f.get("message") or (f.text or "")[:300] for f in ET.parse(junit).getroot().iter("failure")]
    server_errors = [f for f in failures if re.search(r"[Ss]erver error|\b5\d\d\b", f or "")]
    _report("schemathesis_cases", generated)
    _report("schemathesis_5xx", len(server_errors))
    assert not server_errors, "\n".join(server_errors)[:4000]
    assert requests.get(tracker.url + "/healthz", timeout=10).status_code == 200
    assert generated >= 20 * min(EXAMPLES, 5), out[-3000:]


# ------------------------------------------------------------------ structural fuzzer for the bulk endpoints

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

_TEMPLATES = [
    {"v": 1, "id": "x", "type": "task_attempt.end", "time": "2026-01-01T00:00:00Z", "source": {"agent": "airflow"},
     "context": {"dag_id": "fz", "execution_date": "2026-01-01", "task_id": "t", "try_number": "1"},
     "payload": {"state": "failed", "error": {"message": "m"}, "params": {"a": 1}}},
    {"v": 1, "id": "x", "type": "spark_stage.completed", "time": "2026-01-01T00:00:00Z", "source": {"agent": "jvm"},
     "spark": {"app_id": "app-fz"}, "payload": {"stage_id": 1, "attempt_id": 0, "status": "COMPLETE",
                                                  "metrics": {"executor_run_time_ms": 5}}},
    {"v": 1, "id": "x", "type": "sql_query", "time": "2026-01-01T00:00:00Z", "source": {"agent": "jvm"},
     "spark": {"app_id": "app-fz"}, "context": {"dag_id": "fz", "dag_run_id": "r"},
     "payload": {"success": True, "outputs": [{"operation": "write", "path": "/p", "rows": 1,
                                               "schema": [{"name": "a", "type": "int"}]}]}},
    {"v": 1, "id": "x", "type": "dag_run.start", "time": "2026-01-01T00:00:00Z", "source": {"agent": "syncer"},
     "context": {"dag_id": "fz", "logical_date": "2026-01-01T00:00:00+00:00"}, "payload": {"state": "running"}},
]
_OL_TEMPLATE = {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:00+00:00",
                "run": {"runId": "01a204f6-2912-704a-a330-f81d288384ed", "facets": {
                    "airflow": {"dag": {"dag_id": "fz"}, "dagRun": {"run_id": "r", "logical_date": None},
                                "task": {"task_id": "t"}, "taskInstance": {"try_number": 1}},
                    "spark_applicationDetails": {"applicationId": "app-fz"},
                    "parent": {"run": {"runId": "p"}, "job": {"name": "fz", "namespace": "n"}}}},
                "job": {"namespace": "n", "name": "fz.t"},
                "outputs": [{"namespace": "file", "name": "/o", "facets": {"schema": {"fields": [{"name": "a"}]}},
                             "outputFacets": {"outputStatistics": {"rowCount": 1}}}]}


@st.composite
def _mutated(draw: Any, template: Any) -> Any:
    doc = template
    for _ in range(draw(st.integers(1, 3))):
        paths = json_paths(doc)
        path = draw(st.sampled_from(paths))
        doc = replace_at(doc, path, draw(_JSON))
    return doc


def test_bulk_endpoints_structural_fuzz_no_5xx(tracker_factory: Any) -> None:
    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "0"])
    seen = {"cases": 0, "5xx": 0, "statuses": {}}
    examples = max(50, EXAMPLES * 20)

    @settings(max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(st.sampled_from(range(len(_TEMPLATES) + 1)), st.data())
    def one(which: int, data: Any) -> None:
        if which == len(_TEMPLATES):
            path, body = "/api/v1/lineage", data.draw(_mutated(_OL_TEMPLATE))
        else:
            event = data.draw(_mutated(_TEMPLATES[which]))
            if isinstance(event, dict):
                event = {**event, "id": f"fz-{seen['cases']}"}
            path, body = "/api/v1/events", {"events": [event]}
        response = requests.post(tracker.url + path, data=json.dumps(body, default=str), timeout=60,
                                 headers={**tracker.headers(), "Content-Type": "application/json"})
        seen["cases"] += 1
        seen["statuses"][response.status_code] = seen["statuses"].get(response.status_code, 0) + 1
        if response.status_code >= 500:
            seen["5xx"] += 1
            raise AssertionError(f"{path} answered {response.status_code} to {json.dumps(body)[:1500]}\n"
                                 f"{tracker.log()[-3000:]}")

    try:
        one()
    finally:
        _report("bulk_cases", seen["cases"])
        _report("bulk_5xx", seen["5xx"])
        _report("bulk_statuses", {str(k): v for k, v in sorted(seen["statuses"].items())})
    assert requests.get(tracker.url + "/healthz", timeout=10).status_code == 200
