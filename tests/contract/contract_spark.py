"""Spark contract test of the compatibility matrix (scripts/test-matrix.sh runs it once per Spark version).

The SAME listener jar (built once against Spark 4.2) under `spark-submit` of the pyspark named by
RUNLINK_MATRIX_SPARK_PYTHON (a venv with that pyspark; default: this interpreter's), with runlink's conf from
`runlink spark-conf` and an Airflow context in the environment, against a real tracker (this interpreter runs it:
the tracker needs the main .venv). The app (spark_contract_app.py) keeps its UI up until this test has read Spark's
own REST API; then in the tracker: the app under its task attempt, every stage Spark ran with Spark's own metrics,
every job with its result, the SQL queries with their datasets, and nothing from runlink in the driver log.

Not named test_*.py: scripts/test.sh runs every tests/*/test_*.py in the main .venv; this file runs only through
the matrix (`pytest tests/contract/contract_spark.py`), once per Spark version.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from support.spark_runs import assert_stages_match_rest, clean_env, listener_jar_or_skip, runlink_spark_conf
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]

HERE = Path(__file__).resolve().parent
APP = HERE / "spark_contract_app.py"
SPARK_PYTHON = os.environ.get("RUNLINK_MATRIX_SPARK_PYTHON") or sys.executable
LOGICAL = "2026-11-22T10:00:00+00:00"
RUN_ID = "scheduled__2026-11-22T10:00:00+00:00"
READY_DEADLINE_S = 420.0
EXIT_DEADLINE_S = 120.0


@dataclass
class ContractRun:
    """One spark-submit of the contract app, what Spark's REST API said about it, and what the tracker holds."""

    spark_version: str
    scala: str
    dag_id: str
    returncode: int
    log: str
    out: Path
    rest_stages: list[dict]
    rest_jobs: list[dict]
    tree: dict
    attempt: dict
    app: dict


def spark_build(python: str) -> tuple[str, str]:
    """(pyspark version, Scala binary version of its jars) of an interpreter."""
    code = ("import os, pyspark; jars = os.listdir(os.path.join(os.path.dirname(pyspark.__file__), 'jars'));"
            "core = [j for j in jars if j.startswith('spark-core_')];"
            "print(pyspark.__version__, core[0].split('_')[1].split('-')[0])")
    res = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    version, scala = res.stdout.split()
    return version, scala


def rest(ui: str, path: str) -> Any:
    response = requests.get(f"{ui}/api/v1/{path}", timeout=30)
    assert response.status_code == 200, (path, response.status_code, response.text[:500])
    return response.json()


def tracked_app(tracker: Any, dag_id: str, app_id: str, rest_stages: list[dict], rest_jobs: list[dict]
                ) -> tuple[dict, dict, dict] | None:
    """(tree, attempt, app) once the tracker holds the whole application: every stage Spark ran, every job with
    its result, the failed query, the application's end."""
    ran = [s for s in rest_stages if s["status"] in ("COMPLETE", "FAILED")]
    for run in tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]:
        tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
        for attempt in tree["task_attempts"]:
            for app in attempt["spark_apps"]:
                if (app["app_id"] == app_id and app.get("end_time") and len(app["stages"]) >= len(ran)
                        and len([j for j in app["jobs"] if j.get("result")]) >= len(rest_jobs)
                        and any(not q["success"] for q in app["queries"])):
                    return tree, attempt, app
    return None


@pytest.fixture(scope="module")
def contract(tracker_factory: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ContractRun]:
    listener_jar_or_skip()
    tracker = tracker_factory(backend="sqlite")
    version, scala = spark_build(SPARK_PYTHON)
    work = tmp_path_factory.mktemp(f"contract-spark-{version}")
    out = work / "out"
    out.mkdir()
    dag_id = f"contract_spark_{version.replace('.', '_')}_{uuid.uuid4().hex[:6]}"
    ctx = {"AIRFLOW_CTX_DAG_ID": dag_id, "AIRFLOW_CTX_TASK_ID": "spark_etl", "AIRFLOW_CTX_EXECUTION_DATE": LOGICAL,
           "AIRFLOW_CTX_DAG_RUN_ID": RUN_ID, "AIRFLOW_CTX_TRY_NUMBER": "1"}
    conf_args = runlink_spark_conf(clean_env(work / "home"), "--url", tracker.url)
    env = clean_env(work / "home", RUNLINK_TOKEN=tracker.token, PYSPARK_PYTHON=SPARK_PYTHON,
                    PYSPARK_DRIVER_PYTHON=SPARK_PYTHON, **ctx)
    cmd = [str(Path(SPARK_PYTHON).parent / "spark-submit"), "--master", "local[1]",
           "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.port=0",
           "--conf", "spark.ui.showConsoleProgress=false", "--conf", "spark.driver.host=127.0.0.1",
           *conf_args, str(APP), str(out)]
    log_path = work / "driver.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(work))
    try:
        ready_path = out / "ready.json"
        wait_for(lambda: ready_path.exists() or process.poll() is not None,
                 "the contract app's ready.json", READY_DEADLINE_S)
        assert ready_path.exists(), f"the app ended (rc {process.poll()}) before it was ready:\n" \
                                    + log_path.read_text(errors="replace")[-6000:]
        ready = json.loads(ready_path.read_text())
        ready_s = time.monotonic() - started
        base = f"applications/{ready['app_id']}"
        rest_stages = rest(ready["ui"], f"{base}/stages?details=false")
        rest_jobs = rest(ready["ui"], f"{base}/jobs")
        (out / "release").touch()
        returncode = process.wait(timeout=EXIT_DEADLINE_S)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    log_text = log_path.read_text(errors="replace")
    assert returncode == 0, log_text[-6000:]
    tree, attempt, app = wait_for(lambda: tracked_app(tracker, dag_id, ready["app_id"], rest_stages, rest_jobs),
                                  f"Spark {version}'s application {ready['app_id']} complete in the tracker",
                                  90.0, interval_s=0.25)
    print(f"contract: spark {version} (scala {scala}): {len(rest_jobs)} jobs, {len(rest_stages)} stages, "
          f"{len(app['queries'])} queries; app ready after {ready_s:.0f}s, tracked after "
          f"{time.monotonic() - started:.0f}s")
    yield ContractRun(version, scala, dag_id, returncode, log_text, out, rest_stages, rest_jobs, tree, attempt, app)


def test_app_unharmed_and_driver_log_clean(contract: ContractRun) -> None:
    """Exit code 0, and no runlink error, warning or exception in the driver log (a version the jar does not fit
    would show here as the listener's one "disabled" warning)."""
    assert contract.returncode == 0
    runlink_lines = [line for line in contract.log.splitlines() if "runlink" in line.lower()
                     and re.search(r"\b(WARN|ERROR|Exception|Error)\b", line)]
    assert runlink_lines == [], "\n".join(runlink_lines[:20])
    assert not re.search(r"NoSuchMethodError|NoClassDefFoundError|AbstractMethodError|LinkageError", contract.log)


def test_linked_to_its_task_attempt(contract: ContractRun) -> None:
    assert contract.tree["dag_id"] == contract.dag_id
    assert contract.tree["run_id"] == RUN_ID
    assert (contract.attempt["task_id"], contract.attempt["try_number"]) == ("spark_etl", 1)
    assert contract.app["name"] == "runlink-contract"
    assert [a["app_id"] for a in contract.attempt["spark_apps"]] == [contract.app["app_id"]]


def test_stage_metrics_equal_spark_rest_api(contract: ContractRun) -> None:
    ran = assert_stages_match_rest(contract.app, contract.rest_stages)
    assert sum(1 for s in ran if s["status"] == "FAILED") == 1
    assert any(s["shuffleWriteBytes"] > 0 for s in ran) and any(s["shuffleReadBytes"] > 0 for s in ran)
    assert any(s["outputBytes"] > 0 for s in ran) and any(s["inputBytes"] > 0 for s in ran)


def test_jobs_and_queries_with_datasets(contract: ContractRun) -> None:
    jobs = {j["job_id"]: j for j in contract.app["jobs"]}
    assert set(jobs) == {j["jobId"] for j in contract.rest_jobs}
    for job in contract.rest_jobs:
        assert jobs[job["jobId"]]["result"] == ("succeeded" if job["status"] == "SUCCEEDED" else "failed")
    (failed_job,) = [j for j in contract.app["jobs"] if j["result"] == "failed"]
    assert "matrix-contract-boom" in failed_job["failure_reason"]

    queries = contract.app["queries"]
    out = str(contract.out)

    def datasets(direction: str, name: str) -> list[dict]:
        return [d for q in queries for d in q[direction] if (d["path"] or "").rstrip("/").endswith(f"{out}/{name}")]

    assert [d["rows"] for d in datasets("outputs", "orders")] == [2000]
    assert [d["rows"] for d in datasets("outputs", "totals")] == [7]
    assert datasets("outputs", "totals")[0]["format"] == "parquet"
    assert datasets("inputs", "orders"), [(q["description"] if "description" in q else q.get("id")) for q in queries]
    failures = [q for q in queries if not q["success"]]
    assert len(failures) == 1 and "matrix-contract-boom" in (failures[0]["error"] or {}).get("message", "")
