"""`runlink demo` as a user runs it: a fresh RUNLINK_HOME, nothing running, no Airflow set-up.

The demo starts the embedded tracker, runs the example DAG through Airflow (real Spark), prints the run tree and
where to look, exits 0 although the DAG run fails by design, and (no terminal here) stops its tracker. The
tracker's data stays in RUNLINK_HOME: a tracker started afterwards on that SQLite database must hold the whole
tree (all four tasks, a finished Spark application with jobs and stages under each of the three Spark tasks, and
the failure with its error).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests
from airflow_runs import attempts

from runlink.tracker.process import free_port
from support.spark_runs import listener_jar_or_skip

pytestmark = [pytest.mark.airflow, pytest.mark.spark]

SPARK_TASKS = ("spark_submit", "bash_spark_submit", "session_in_task")


def _demo_env(home: Path) -> dict[str, str]:
    """The environment of a user who never set anything up: no RUNLINK_*, no AIRFLOW_* (ours are the tests')."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNLINK_", "AIRFLOW", "SPARK_CONF_DIR",
                                                                    "SPARK_DIST_CLASSPATH"))}
    env["RUNLINK_HOME"] = str(home)
    if os.environ.get("RUNLINK_SERVER_PYTHON"):  # Airflow 2.11: the tracker runs from the main .venv
        env["RUNLINK_SERVER_PYTHON"] = os.environ["RUNLINK_SERVER_PYTHON"]
    return env


def _runlink_command() -> list[str]:
    return [sys.executable, "-m", "runlink"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    listener_jar_or_skip()
    home = tmp_path_factory.mktemp("demo-home") / "runlink"  # does not exist yet, like ~/.runlink
    url = f"http://127.0.0.1:{free_port()}"
    result = subprocess.run([*_runlink_command(), "demo", "--url", url], env=_demo_env(home),
                            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1200)
    return {"home": home, "url": url, "result": result}


def test_demo_prints_the_tree_and_exits_0(demo: dict[str, Any]) -> None:
    result = demo["result"]
    out = result.stdout
    assert result.returncode == 0, f"exit {result.returncode}\n{out[-6000:]}\n{result.stderr[-6000:]}"
    assert "started the tracker at " + demo["url"] in out
    # the tree, as `runlink runs show` prints it
    head = re.search(r"^runlink_demo\s+(\S+)\s+\[failed\]", out, re.MULTILINE)
    assert head, out
    for task in SPARK_TASKS:
        assert re.search(rf"^[├└]─ {task} try 1 \[success\]", out, re.MULTILINE), out
    assert re.search(r"^[├└]─ fails try 1 \[failed\]", out, re.MULTILINE), out
    assert "error: builtins.ValueError: this task fails on purpose" in out
    assert len(re.findall(r"spark app \S+ runlink-demo-\S+ \[succeeded\]", out)) == 3, out
    assert "metrics: buckets=10" in out
    # where to look: the UI page of this run, no login needed on the demo's own tracker
    assert re.search(re.escape(demo["url"]) + r"/ui/dag-runs/[0-9a-f-]{36}", out), out
    assert "reading needs no login" in out
    assert "stopped the tracker" in out  # not a terminal: nothing is left running
    with pytest.raises(requests.ConnectionError):
        requests.get(demo["url"] + "/healthz", timeout=5)


def test_demo_data_stays_in_runlink_home(demo: dict[str, Any], tracker_factory: Any,
                                         server_python: str | None) -> None:
    """A tracker started on the demo's SQLite database serves the whole tree."""
    assert demo["result"].returncode == 0, demo["result"].stdout[-4000:]
    home: Path = demo["home"]
    assert (home / "runlink.db").is_file() and (home / "token").is_file()
    assert (home / "demo-airflow" / "airflow.db").is_file()  # Airflow's own metadata DB, under RUNLINK_HOME
    tracker = tracker_factory(db_url=f"sqlite:///{home / 'runlink.db'}", python=server_python)
    token = (home / "token").read_text().strip()
    headers = {"Authorization": f"Bearer {token}"}
    page = requests.get(tracker.url + "/api/v1/dag-runs", params={"dag_id": "runlink_demo"}, headers=headers,
                        timeout=30).json()
    (run,) = page["items"]
    tree = requests.get(f"{tracker.url}/api/v1/dag-runs/{run['id']}", headers=headers, timeout=30).json()
    assert tree["state"] == "failed"
    assert sorted(a["task_id"] for a in tree["task_attempts"]) == sorted([*SPARK_TASKS, "fails"])
    for task in SPARK_TASKS:
        (attempt,) = attempts(tree, task)
        assert attempt["state"] == "success", attempt
        (app,) = attempt["spark_apps"]
        assert app["end_time"] and app["jobs"] and app["stages"], app
        assert all(job["result"] == "succeeded" for job in app["jobs"])
        assert app["queries"], "no SQL query recorded"
    assert attempts(tree, "spark_submit")[0]["operator"].endswith("SparkSubmitOperator")
    assert attempts(tree, "bash_spark_submit")[0]["operator"].endswith("BashOperator")
    (session,) = attempts(tree, "session_in_task")
    assert {m["key"]: m["value"] for m in session["metrics"]} == {"buckets": 10}
    (fails,) = attempts(tree, "fails")
    assert fails["state"] == "failed"
    assert fails["error"]["type"].endswith("ValueError")
    assert "Traceback" in fails["error"]["traceback"]
    assert fails["log"] and "fails on purpose" in fails["log"]["text"]  # the demo turns log capture on
