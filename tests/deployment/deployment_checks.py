"""What the deployment tests compare: Airflow's own record of a DAG run (its REST API: task instances and every
try) against what the tracker shows through the CLI a user types (`runlink runs list/show --json`), and the
uid each runlink component reported (for failure messages: a split run names who said what).
"""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime
from pathlib import Path
from typing import Any

from support.airflow_standalone import Standalone
from support.cli import runlink_cli
from support.waiting import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

DAG_ID = "deployment_e2e"
LOGICAL_DATE = "2026-04-01T06:00:00+00:00"
RUN_ID = "deployment_run_1"
INSTANCE = "prod"
PASSWORD_VAR = "DEPLOYMENT_AIRFLOW_PASSWORD"
#: (task_id, try_number, state) Airflow must end with; the retried task's first try is checked apart
EXPECTED_FINAL = {
    ("spark_submit", 1, "success"),
    ("metric", 1, "success"),
    ("flaky", 2, "success"),
    ("boom", 1, "failed"),
    ("after_boom", 0, "upstream_failed"),
    ("skip_me", 1, "skipped"),
}
TIME_TOLERANCE_S = 1.0
EVIDENCE_DEADLINE_S = 150.0


def airflow_env(tracker_url: str, token: str, home: Path) -> dict[str, str]:
    """The environment every Airflow process gets: the tracker, a client home, generous Spark delivery bounds.
    No RUNLINK_AIRFLOW_UID: the components must agree on the instance uid by themselves."""
    return {
        "RUNLINK_URL": tracker_url,
        "RUNLINK_TOKEN": token,
        "RUNLINK_TRACKING": "true",
        "RUNLINK_HOME": str(home / "runlink-client"),
        "RUNLINK_FLUSH_TIMEOUT": "30",
        "SPARK_CONF_DIR": str(HERE / "spark-conf"),
        "DEPLOYMENT_TEST_JOB": str(HERE / "jobs" / "tiny_spark.py"),
        "PYTHONPATH": str(ROOT / "python"),
        # Airflow 3 task processes call the API server's execution API at start; on a loaded 2-core machine its
        # single worker can take longer than the 5 s default, and the task then fails while still queued
        "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60",
    }


def without_pinned_uid() -> None:
    """Fail early if this process would pass a pinned uid down to Airflow (the tests are about the default)."""
    pinned = [k for k in os.environ if k in ("RUNLINK_AIRFLOW_UID", "AIRFLOW_CTX_UID") or k.endswith("RUNLINK__UID")]
    assert not pinned, f"the deployment tests need no pinned uid, but the environment sets {pinned}"


def register(tracker: Any, airflow: Any) -> str:
    """`runlink airflow add` as the README says, without --uid; returns what it printed."""
    result = runlink_cli(tracker, "airflow", "add", INSTANCE, "--url", airflow.url, "--username", airflow.username,
                         "--password-env", PASSWORD_VAR, env={PASSWORD_VAR: airflow.password})
    assert airflow.password not in result.stdout + result.stderr
    return (result.stdout + result.stderr).strip()


def monitor_once(tracker: Any) -> dict[str, Any]:
    result = runlink_cli(tracker, "monitor", "--once", "--json", "--instance", INSTANCE)
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["ok"], (result.stdout, result.stderr[-3000:])
    return lines[0]


def cli_json(tracker: Any, *args: str) -> Any:
    return json.loads(runlink_cli(tracker, *args, "--json").stdout)


def instant(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


# -- Airflow's record ----------------------------------------------------------------------------------------


def airflow_attempts(airflow: Standalone, dag_id: str, run_id: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Every try of every task instance of one DAG run, from the REST API (task instances and the tries endpoint):
    (task_id, try_number) -> state, start, end, duration."""
    base = f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances"
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for ti in airflow.api("GET", base, params={"limit": 100})["task_instances"]:
        tries = [ti]
        if ti["try_number"] >= 1:
            tries = airflow.api("GET", f"{base}/{ti['task_id']}/tries")["task_instances"]
        for t in tries:
            out[(t["task_id"], t["try_number"])] = {
                "state": t["state"], "start_date": t["start_date"], "end_date": t["end_date"],
                "duration": t["duration"]}
    return out


# -- the tracker's view --------------------------------------------------------------------------------------


def tracker_runs(tracker: Any) -> list[dict[str, Any]]:
    """`runlink runs list --dag-id D --json`."""
    return cli_json(tracker, "runs", "list", "--dag-id", DAG_ID, "--limit", "100")


def tracker_tree(tracker: Any, run_id: str) -> dict[str, Any]:
    """`runlink runs show D RUN --json`."""
    return cli_json(tracker, "runs", "show", DAG_ID, run_id)


def tracker_attempts(tree: dict[str, Any]) -> dict[tuple[str, int], dict[str, Any]]:
    return {(a["task_id"], a["try_number"]): a for a in tree["task_attempts"]}


def uids_reported(tracker: Any) -> dict[str, list[str]]:
    """For each reporting component, the instance uids it put in its contexts for the DAG (read from the tracker's
    SQLite database): the plugin in the scheduler (DAG run events), the plugin in task processes (attempt events),
    the syncer, the Spark listener (apps), the SDK in the task (metrics)."""
    path = tracker.db_url.split("sqlite:///", 1)[1]
    seen: dict[str, set[str]] = {}
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT s.agent, s.kind, c.uid FROM state_events s JOIN contexts c ON c.id = s.context_id "
            "WHERE c.dag_id = ?", (DAG_ID,)).fetchall()
        rows += [("jvm", "spark_app", uid) for (uid,) in conn.execute(
            "SELECT c.uid FROM spark_apps a JOIN contexts c ON c.id = a.context_id WHERE c.dag_id = ?", (DAG_ID,))]
        rows += [("python", "metric", uid) for (uid,) in conn.execute(
            "SELECT c.uid FROM metrics m JOIN contexts c ON c.id = m.context_id WHERE c.dag_id = ?", (DAG_ID,))]
    for agent, kind, uid in rows:
        seen.setdefault(f"{agent}:{kind}", set()).add(str(uid))
    return {k: sorted(v) for k, v in sorted(seen.items())}


def diagnosis(deployment: Any) -> str:
    """What to read when an assertion fails: the uids by component, the runs the tracker lists, what
    `runlink airflow add` said."""
    runs = tracker_runs(deployment.tracker)
    return (f"\nuids reported per component: {json.dumps(uids_reported(deployment.tracker))}"
            f"\ndistinct uids of the tracker's runs of {DAG_ID}: {sorted({str(r.get('uid')) for r in runs})}"
            f"\nruns listed: {json.dumps([(r.get('uid'), r.get('run_id'), r.get('state')) for r in runs])}"
            f"\n`runlink airflow add` said: {deployment.registered!r}")


def airflow_errors(airflow: Standalone, limit: int = 12) -> str:
    """Airflow's own error lines (a task failing before it ran shows there, not in the task's log)."""
    lines = [line for line in airflow.log().splitlines() if "[error" in line or "Error:" in line]
    return "\n".join(line[:400] for line in lines[-limit:])


def wait_for_evidence(tracker: Any, airflow_truth: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    """Poll the tracker (deadline, no sleep as synchronisation) until what the task processes and the syncer send
    has arrived, wherever it landed (in one run or several): every attempt Airflow has, the Spark application with
    its end, the metric. Returns what is still missing at the deadline (the tests then say what it breaks)."""

    def missing() -> list[str]:
        attempts: dict[tuple[str, int], list[dict[str, Any]]] = {}
        for run in tracker.get_json("/api/v1/dag-runs", dag_id=DAG_ID, limit=100)["items"]:
            for a in tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                attempts.setdefault((a["task_id"], a["try_number"]), []).append(a)
        gaps = [f"attempt {key} ({truth['state']})" for key, truth in airflow_truth.items()
                if not any(a.get("state") == truth["state"] for a in attempts.get(key, []))]
        apps = [app for a in attempts.get(("spark_submit", 1), []) for app in a.get("spark_apps") or []]
        if not any(app.get("end_time") for app in apps):
            gaps.append("the Spark application's end")
        if not any(m.get("key") == "rows_seen" for a in attempts.get(("metric", 1), []) for m in a.get("metrics")
                   or []):
            gaps.append("the metric rows_seen")
        return gaps

    try:
        return wait_for(missing, "the evidence", EVIDENCE_DEADLINE_S, ready=lambda gaps: not gaps, interval_s=0.5)
    except AssertionError:  # the deadline: what is still missing is the finding
        return missing()
