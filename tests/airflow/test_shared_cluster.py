"""Shared Spark applications, end to end: two Airflow tasks of one DAG run (dag.test()) do their Spark work on one
application that was started with no Airflow context, and each task attempt's run tree shows that application
with only its own jobs, stages, queries and datasets.

- Spark Connect: a real Spark Connect server (the jar pyspark ships; runlink's `spark-conf`; local[1]) in a process
  of its own, one per module; each task opens its own session on it.
- Classic: one SparkSession created by the driver before any task, used by each task from a thread of its own
  (`dag.test()` in a subprocess, so that this pytest process starts no JVM).

The tracker is a real `runlink server` reached over HTTP (tests/airflow/conftest.py).
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow_runs import attempts, wait_for_tree

from support.spark_connect import spark_connect_server
from support.spark_runs import listener_jar_or_skip

pytestmark = [pytest.mark.airflow, pytest.mark.spark]

DAGS = Path(__file__).resolve().parent / "dags" / "runlink_shared_dags.py"
SERVER_START_DEADLINE_S = 120.0
TASKS = ("extract", "load")
#: what pyspark's Spark Connect client sets in os.environ, marking the whole process (and its children) Connect
CONNECT_MODE_ENV = ("SPARK_CONNECT_MODE_ENABLED", "SPARK_REMOTE", "SPARK_LOCAL_REMOTE")


def _driver_env() -> dict[str, str]:
    """This environment (the tracker's URL and token) less any Airflow context: a shared application is started
    outside any task (an earlier dag.test() in this process leaves AIRFLOW_CTX_* behind)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CTX_") and k not in CONNECT_MODE_ENV}


@pytest.fixture
def connect_client_env() -> Iterator[None]:
    """Undo the Connect mode pyspark's client leaves in os.environ: later sessions and child processes of this
    pytest process are classic again."""
    saved = {key: os.environ.get(key) for key in CONNECT_MODE_ENV}
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


CONNECT_CLIENT_MODULES = ("grpc", "grpc_status", "google.protobuf", "zstandard", "pandas", "pyarrow")


@pytest.fixture(scope="module")
def connect_server(airflow_tracker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server started with `runlink spark-conf`; its sc:// URL."""
    for needed in CONNECT_CLIENT_MODULES:  # the Airflow 2.11 leg's environment has pyspark without them
        pytest.importorskip(needed, reason=f"the Spark Connect client needs {needed}")
    log_path = tmp_path_factory.mktemp("connect") / "server.log"
    with spark_connect_server(_driver_env(), log_path, deadline_s=SERVER_START_DEADLINE_S) as url:
        yield url


def _load_dags() -> Any:
    spec = importlib.util.spec_from_file_location("runlink_shared_dags", DAGS)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def _shared_app(attempt: dict) -> dict | None:
    apps = [app for app in attempt.get("spark_apps") or [] if app.get("shared")]
    return apps[0] if len(apps) == 1 else None


def _outputs(app: dict) -> list[str]:
    return [ds.get("path") or ds.get("uri") or "" for q in app["queries"] for ds in q["outputs"]]


def _complete(tree: dict, kind: str) -> bool:
    """Both attempts show the shared application with their jobs, stages and their write."""
    for task_id in TASKS:
        found = attempts(tree, task_id)
        app = _shared_app(found[0]) if len(found) == 1 else None
        if app is None or not (app["jobs"] and app["stages"]
                               and any(f"shared_{kind}_{task_id}" in path for path in _outputs(app))):
            return False
    return True


def _each_attempt_sees_only_its_own(tracker: Any, tree: dict, kind: str) -> None:
    apps = {task_id: _shared_app(attempts(tree, task_id)[0]) for task_id in TASKS}
    extract, load = apps["extract"], apps["load"]
    assert extract["id"] == load["id"], "one application, under both attempts"
    assert extract["context_id"] == load["context_id"], "the application keeps its own (synthetic) context"
    for task_id, app in apps.items():
        other = "load" if task_id == "extract" else "extract"
        paths = _outputs(app)
        assert paths and all(f"shared_{kind}_{task_id}" in p for p in paths), (task_id, paths)
        assert not any(f"shared_{kind}_{other}" in p for p in paths), (task_id, paths)
        contexts = {job["context_id"] for job in app["jobs"]} | {q["context_id"] for q in app["queries"]}
        assert len(contexts) == 1 and None not in contexts, (task_id, contexts)
    jobs = {task_id: {job["job_id"] for job in app["jobs"]} for task_id, app in apps.items()}
    stages = {task_id: {stage["stage_id"] for stage in app["stages"]} for task_id, app in apps.items()}
    assert jobs["extract"] and jobs["load"] and not jobs["extract"] & jobs["load"], jobs
    assert stages["extract"] and stages["load"] and not stages["extract"] & stages["load"], stages
    assert all(job["result"] == "succeeded" for app in apps.values() for job in app["jobs"])

    page = tracker.get_json(f"/api/v1/spark-apps/{extract['id']}")
    users = {(u["dag_id"], u["task_id"]): u for u in page["used_by"]}
    assert set(users) == {(tree["dag_id"], t) for t in TASKS}, page["used_by"]
    for task_id in TASKS:
        assert users[(tree["dag_id"], task_id)]["task_attempt_pk"] == attempts(tree, task_id)[0]["id"]
        assert users[(tree["dag_id"], task_id)]["dag_run_pk"] == tree["id"]
    assert {job["job_id"] for job in page["jobs"]} >= jobs["extract"] | jobs["load"], "the app page shows all"

    ui = _ui_session(tracker)
    html = ui.get(f"{tracker.url}/ui/spark-apps/{extract['id']}", timeout=30).text
    for task_id in TASKS:
        assert f'/ui/task-attempts/{attempts(tree, task_id)[0]["id"]}"' in html, "the app page links each user"
    html = ui.get(f"{tracker.url}/ui/task-attempts/{attempts(tree, 'load')[0]['id']}", timeout=30).text
    assert f"/ui/spark-apps/{extract['id']}" in html and "shared application: this task" in html


def _ui_session(tracker: Any) -> requests.Session:
    """Logged in to the tracker's web UI with its admin token."""
    ui = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', ui.get(tracker.url + "/ui/login", timeout=30).text).group(1)
    ui.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf, "next": "/ui/dags"}, timeout=30)
    return ui


@pytest.mark.usefixtures("connect_client_env")
def test_two_tasks_on_one_spark_connect_server(airflow_tracker: Any, connect_server: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLINK_TEST_CONNECT_URL", connect_server)
    dag_run = _load_dags().rl_shared_connect.test()
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    tree = wait_for_tree(airflow_tracker, "rl_shared_connect", dag_run.run_id, lambda t: _complete(t, "connect"))
    _each_attempt_sees_only_its_own(airflow_tracker, tree, "connect")


_CLASSIC_RUNNER = """
import importlib.util, json, sys
from pyspark.sql import SparkSession
import runlink.spark
spec = importlib.util.spec_from_file_location("shared_dags", sys.argv[1])
dags = importlib.util.module_from_spec(spec); spec.loader.exec_module(dags)
builder = SparkSession.builder.master("local[1]").appName("shared-driver")
for key, value in {**runlink.spark.conf(), "spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "2"}.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
dags.SHARED["spark"] = spark
dag_run = dags.rl_shared_classic.test()
spark.stop()
print("RUNLINK_RUN=" + json.dumps([dag_run.run_id, str(getattr(dag_run.state, "value", dag_run.state))]))
"""


def test_two_tasks_on_one_classic_spark_context(airflow_tracker: Any) -> None:
    listener_jar_or_skip()
    env = {**_driver_env(), "RUNLINK_FLUSH_TIMEOUT": "30"}
    result = subprocess.run([sys.executable, "-c", _CLASSIC_RUNNER, str(DAGS)], capture_output=True, text=True,
                            timeout=600, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RUNLINK_RUN=")]
    assert lines, f"the driver failed:\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    run_id, state = json.loads(lines[0].split("=", 1)[1])
    assert state == "success", result.stderr[-6000:]
    tree = wait_for_tree(airflow_tracker, "rl_shared_classic", run_id, lambda t: _complete(t, "classic"))
    _each_attempt_sees_only_its_own(airflow_tracker, tree, "classic")
