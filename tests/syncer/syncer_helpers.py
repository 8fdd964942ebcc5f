"""Shared pieces of the syncer tests: constants, the listener recorder, CLI helpers, Airflow/tracker views."""

from __future__ import annotations

import gzip
import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from support.airflow_standalone import Standalone
from support.cli import runlink_cli

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

DAG_ID = "syncer_e2e"
LOGICAL_DATE = "2026-03-01T06:00:00+00:00"
RUN_ID = "syncer_e2e_run_1"
UID_A = "af-test-a"
UID_B = "af-test-b"

class Recorder:
    """Captures event batches POSTed by the listener (gzip JSON), answering like a tracker would."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                events = json.loads(body)["events"]
                with recorder.lock:
                    recorder.events.extend(events)
                answer = json.dumps({"accepted": len(events), "duplicates": 0}).encode()
                self.send_response(202)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def of_run(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.events
                    if (e.get("context") or {}).get("dag_id") == dag_id
                    and (e.get("context") or {}).get("dag_run_id") == run_id]

    def close(self) -> None:
        self.server.shutdown()



#: the test DAG's task attempts (task_id, try_number) once its run has ended
ATTEMPTS = {("ok", "1"), ("boom", "1"), ("flaky", "1"), ("flaky", "2"), ("skip_me", "1")}


def runtime_missing(recorder: Recorder, airflow: Standalone, run_id: str) -> dict[str, Any]:
    """The listener's events of the run not recorded yet (every attempt's end, the run's end), what was (by type),
    and the spool files left in the deployment's RUNLINK_HOME: a wait that runs out says which it was."""
    events = recorder.of_run(DAG_ID, run_id)
    ends = {((e["context"] or {}).get("task_id"), (e["context"] or {}).get("try_number"))
            for e in events if e["type"] == "task_attempt.end"}
    missing = [f"task_attempt.end of {task} try {attempt}" for task, attempt in sorted(ATTEMPTS - ends)]
    if not any(e["type"] == "dag_run.end" for e in events):
        missing.append("dag_run.end")
    return {"missing": missing, "received": dict(Counter(e["type"] for e in events)),
            "events in all": len(recorder.events), "spool files": spool_files(airflow)[:10]}


def spool_files(airflow: Standalone) -> list[str]:
    """The files in the spool of the deployment's runlink client (RUNLINK_HOME, see standalone_env)."""
    return sorted(str(f.relative_to(airflow.home)) for f in (airflow.home / "runlink-client").rglob("*")
                  if f.is_file())


def standalone_env(uid: str, recorder_url: str | None, home: Path, flavor: str = "a") -> dict[str, str]:
    env = {
        "RUNLINK_AIRFLOW_UID": uid,
        "RUNLINK_HOME": str(home / "runlink-client"),
        "SYNCER_TEST_MARKERS": str(home / "markers"),
        "SYNCER_TEST_FLAVOR": flavor,
        "PYTHONPATH": str(ROOT / "python"),
    }
    if recorder_url:
        env.update({"RUNLINK_URL": recorder_url, "RUNLINK_TOKEN": "recorder", "RUNLINK_TRACKING": "true"})
    else:
        env["RUNLINK_TRACKING"] = "false"
    return env




def register(tracker: Any, name: str, airflow: Standalone, uid: str) -> None:
    runlink_cli(tracker, "airflow", "add", name, "--url", airflow.url, "--username", airflow.username,
                "--password-env", "SYNCER_TEST_PASSWORD", "--uid", uid,
                env={"SYNCER_TEST_PASSWORD": airflow.password})


def monitor_once(tracker: Any, name: str, *extra: str) -> dict[str, Any]:
    result = runlink_cli(tracker, "monitor", "--once", "--json", "--instance", name, *extra)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["ok"], (result.stdout, result.stderr[-3000:])
    return lines[0]


def airflow_truth(airflow: Standalone, dag_id: str) -> dict[str, Any]:
    """Every run's state and every try of every task instance, as Airflow's REST API reports them."""
    out: dict[str, Any] = {}
    for run in airflow.api("GET", f"/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]:
        attempts = set()
        tis = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances",
                          params={"limit": 100})["task_instances"]
        for ti in tis:
            if ti["try_number"] <= 1 and ti["state"] != "up_for_retry":
                attempts.add((ti["task_id"], ti["map_index"], ti["try_number"], ti["state"]))
                continue
            tries = airflow.api("GET", f"/dags/{dag_id}/dagRuns/{run['dag_run_id']}/taskInstances/"
                                       f"{ti['task_id']}/tries")["task_instances"]
            for t in tries:
                attempts.add((t["task_id"], t["map_index"], t["try_number"], t["state"]))
        out[run["dag_run_id"]] = {"state": run["state"], "attempts": attempts}
    return out


def tracker_view(tracker: Any, dag_id: str, uid: str) -> dict[str, Any]:
    """The same, as the tracker's API shows it (run list + each run's tree)."""
    out: dict[str, Any] = {}
    items = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id, instance=uid, limit=500)["items"]
    for run in items:
        tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
        attempts = {(a["task_id"], a["map_index"], a["try_number"], a["state"]) for a in tree["task_attempts"]}
        out[run["run_id"]] = {"state": run["state"], "attempts": attempts}
    return out


def ingested_total(tracker: Any) -> float:
    """The tracker's own counter of newly stored events (Prometheus /metrics)."""
    text = requests.get(tracker.url + "/metrics", timeout=30).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("runlink_events_ingested_total"):
            total += float(line.rsplit(" ", 1)[1])
    return total

