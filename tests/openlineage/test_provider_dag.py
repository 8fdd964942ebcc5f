"""The must-show: apache-airflow-providers-openlineage with its HTTP transport pointed at runlink, running a real DAG
with dag.test(), while runlink's own Airflow plugin tracks the same tasks: one task attempt per task, fed by both.

Airflow runs in subprocesses with their own AIRFLOW_HOME, so this module never changes this process's Airflow
configuration (other test packages set theirs at import)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.airflow

DAG_FILE = '''
from datetime import datetime
from airflow.sdk import DAG, task
from airflow.providers.standard.operators.bash import BashOperator

with DAG("ol_provider_dag", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as dag:
    @task
    def extract():
        import runlink
        runlink.log_metric("rows", 7)
        return 7

    @task
    def explode():
        raise ValueError("boom with password=hunter2")

    load = BashOperator(task_id="load", bash_command="echo load")
    extract() >> load >> explode()
'''

RUNNER = '''
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("d", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
dr = m.dag.test()
print("RESULT=" + json.dumps({"run_id": dr.run_id, "state": str(dr.state)}))
'''


def _airflow_env(home: Path, dags: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE", "RUNLINK_"))}
    env.update({
        "AIRFLOW_HOME": str(home), "AIRFLOW__CORE__DAGS_FOLDER": str(dags), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
    })
    return env


def test_openlineage_provider_and_runlink_plugin_merge(tracker_factory: Any, tmp_path: Path) -> None:
    tracker = tracker_factory(backend="sqlite")
    ingest = tracker.make_token("ingest")
    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "ol_provider_dag.py").write_text(DAG_FILE)
    (tmp_path / "runner.py").write_text(RUNNER)
    env = _airflow_env(tmp_path / "airflow", dags)
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=900)
    assert migrate.returncode == 0, migrate.stderr[-3000:]
    env.update({
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps({"type": "http", "url": tracker.url,
                                                       "auth": {"type": "api_key", "apiKey": ingest}}),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "ol_test",
        "RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": ingest, "RUNLINK_HOME": str(tmp_path / "client"),
    })
    result = subprocess.run([sys.executable, str(tmp_path / "runner.py"), str(dags / "ol_provider_dag.py")],
                            env=env, capture_output=True, text=True, timeout=900)
    line = next((x for x in result.stdout.splitlines() if x.startswith("RESULT=")), None)
    assert line, result.stdout[-3000:] + result.stderr[-5000:]
    run_id = json.loads(line[len("RESULT="):])["run_id"]

    db = Path(tracker.db_url[len("sqlite:///"):])
    deadline = time.monotonic() + 120
    agents: dict[str, set[str]] = {}
    tree: dict[str, Any] = {}
    while time.monotonic() < deadline:
        page = tracker.get_json("/api/v1/dag-runs", dag_id="ol_provider_dag", run_id=run_id)
        if page["items"]:
            tree = tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")
            with sqlite3.connect(db) as conn:
                rows = conn.execute(
                    "SELECT c.attempt_pk, s.agent FROM state_events s JOIN contexts c ON c.id = s.context_id "
                    "WHERE c.dag_id = 'ol_provider_dag' AND s.kind = 'task_attempt'").fetchall()
            agents = {}
            for attempt_pk, agent in rows:
                agents.setdefault(attempt_pk, set()).add(agent)
            ids = {a["id"] for a in tree["task_attempts"]}
            if len(ids) == 3 and all({"airflow", "openlineage"} <= agents.get(i, set()) for i in ids):
                break
        time.sleep(0.5)  # polling interval; the condition is what the tracker stored
    attempts = {a["task_id"]: a for a in tree.get("task_attempts", [])}
    assert sorted(attempts) == ["explode", "extract", "load"], json.dumps(tree)[:4000] + tracker.log()[-2000:]
    for attempt in attempts.values():  # one attempt per task, reported by both runlink's plugin and OpenLineage
        assert {"airflow", "openlineage"} <= agents.get(attempt["id"], set()), (attempt["task_id"], agents)
        assert attempt["try_number"] == 1
    assert attempts["extract"]["state"] == "success" and attempts["load"]["state"] == "success"
    assert attempts["explode"]["state"] == "failed"
    assert "boom" in attempts["explode"]["error"]["message"] and "hunter2" not in json.dumps(tree)
    assert [m["value"] for m in attempts["extract"]["metrics"] if m["key"] == "rows"] == [7]
    assert attempts["load"]["log_url"]  # OpenLineage's taskInstance facet
    assert attempts["load"]["operator"] == "BashOperator"
