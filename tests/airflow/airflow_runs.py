"""What the Airflow tests share: the test DAGs run by dag.test() (here or in a fresh interpreter), and the run
tree the tracker builds from them, waited for with a deadline."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support.waiting import wait_for

HERE = Path(__file__).resolve().parent
POLL_DEADLINE_S = 90.0


def airflow_major() -> int:
    import airflow

    return int(airflow.__version__.split(".")[0])


def dag_module(file_name: str) -> Any:
    """A DAG file of tests/airflow/dags imported as a module (as dag.test() users do)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(Path(file_name).stem, HERE / "dags" / file_name)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_dag(dag_id: str) -> Any:
    """The DAG object from the test DAG file."""
    return getattr(dag_module("runlink_test_dags.py"), dag_id)


def run_dag(dag_id: str) -> Any:
    """dag.test() in this process; returns the DagRun."""
    dag = load_dag(dag_id)
    return dag.test()


def run_dag_in_subprocess(dag_id: str, env: dict[str, str] | None = None) -> str:
    """dag.test() in a fresh interpreter (a task process of its own, like a worker); returns the run_id.

    Used for in-task SparkSessions: the py4j gateway of a JVM started earlier in this pytest process would be
    reused and the session would not see the task's Spark conf.
    """
    code = (
        "import sys, importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(HERE / 'dags' / 'runlink_test_dags.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        f"dr = getattr(m, {dag_id!r}).test()\n"
        "print('RUNLINK_RUN_ID=' + json.dumps(dr.run_id))\n"
    )
    # its events are delivered at its exit (dag.test() runs tasks in-process): a generous bound for a busy machine
    env = {**os.environ, "RUNLINK_FLUSH_TIMEOUT": "30", **(env or {})}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    for line in result.stdout.splitlines():
        if line.startswith("RUNLINK_RUN_ID="):
            return json.loads(line.split("=", 1)[1])
    raise AssertionError(f"dag.test() in a subprocess failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")


def wait_for_tree(tracker: Any, dag_id: str, run_id: str, ready: Callable[[dict], bool],
                  deadline_s: float = POLL_DEADLINE_S) -> dict:
    """Poll the tracker until the run tree of (dag_id, run_id) satisfies `ready`; fail with the last tree."""

    def tree() -> dict:
        page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id, run_id=run_id)
        return tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}") if page["items"] else {}

    try:
        return wait_for(tree, f"tracker tree for {dag_id}/{run_id}", deadline_s,
                        ready=lambda found: bool(found) and ready(found), interval_s=0.25)
    except AssertionError:
        last = tree()
    summary = [
        {"task_id": a["task_id"], "try": a.get("try_number"), "state": a.get("state"),
         "apps": [{"app_id": app.get("app_id"), "end_time": app.get("end_time"), "jobs": len(app.get("jobs") or []),
                   "stages": len(app.get("stages") or [])} for app in a.get("spark_apps") or []]}
        for a in last.get("task_attempts", [])
    ]
    runs = tracker.get_json("/api/v1/dag-runs", limit=20)["items"]
    raise AssertionError(f"tracker tree for {dag_id}/{run_id} not ready in {deadline_s}s; attempts: "
                         f"{json.dumps(summary, indent=1)}\nrecent runs: "
                         f"{json.dumps([(r['dag_id'], r.get('run_id')) for r in runs])}\n"
                         f"agents' delivery reports (dropped/spooled/errors tell a lost event): {_health(tracker)}\n"
                         f"{tracker.log()[-3000:]}")


def _health(tracker: Any) -> str:
    """The last agent_health reports the tracker stored (SQLite only): why an app may lack its end."""
    if not tracker.db_url.startswith("sqlite:///"):
        return "(not SQLite)"
    import sqlite3

    try:
        with sqlite3.connect(f"file:{tracker.db_url[len('sqlite:///'):]}?mode=ro", uri=True, timeout=10) as conn:
            rows = conn.execute(
                "SELECT agent, pid, events_sent, events_dropped, events_spooled, send_errors, reason, time "
                "FROM agent_health ORDER BY time DESC LIMIT 20").fetchall()
    except sqlite3.Error as exc:
        return f"(unreadable: {exc})"
    return json.dumps(rows)


def attempts(tree: dict, task_id: str) -> list[dict]:
    return sorted((a for a in tree.get("task_attempts", []) if a["task_id"] == task_id),
                  key=lambda a: a.get("try_number") or 0)
