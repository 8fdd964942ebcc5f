"""End to end: a real `spark-submit` (local[2]) of a PySpark app shows up, under the Airflow task attempt that
launched it, in a real tracker: jobs, stages with metrics equal to Spark's own REST status API, queries with
inputs/outputs and row counts, the failed job with its error. Then: context only as `spark.env.*` conf,
EXECUTION_DATE as `{{ ds }}`, and a tracker that is down or hangs (the app still succeeds, drops are counted).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from support.spark_runs import (
    assert_stages_match_rest,
    callsite_lines,
    clean_env,
    listener_jar_or_skip,
    runlink_spark_conf,
    spark_submit,
)
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]

APP = "etl_app.py"
LOGICAL = "2026-11-22T10:00:00+00:00"

def airflow_ctx(dag_id: str, task_id: str = "spark_etl", execution_date: str = LOGICAL,
                run_id: str | None = "scheduled__2026-11-22T10:00:00+00:00", try_number: str = "1") -> dict[str, str]:
    ctx = {"AIRFLOW_CTX_DAG_ID": dag_id, "AIRFLOW_CTX_TASK_ID": task_id,
           "AIRFLOW_CTX_EXECUTION_DATE": execution_date, "AIRFLOW_CTX_TRY_NUMBER": try_number}
    if run_id:
        ctx["AIRFLOW_CTX_DAG_RUN_ID"] = run_id
    return ctx


def app_tree(tracker: Any, dag_id: str, app_id: str, rest: dict) -> tuple[dict, dict, dict] | None:
    """(run, attempt, app) once the tracker holds the whole app (every stage Spark ran, every job ended)."""
    runs = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    ran = [s for s in rest["stages"] if s["status"] in ("COMPLETE", "FAILED")]
    for run in runs:
        tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
        for attempt in tree["task_attempts"]:
            for app in attempt["spark_apps"]:
                if app["app_id"] != app_id:
                    continue
                jobs_done = [j for j in app["jobs"] if j.get("result")]
                if (len(app["stages"]) >= len(ran) and len(jobs_done) >= len(rest["jobs"])
                        and app.get("end_time") and app["queries"] and attempt["datasets"]):
                    return tree, attempt, app
    return None


def check_app(tracker: Any, dag_id: str, submitted: Any, task_id: str = "spark_etl") -> tuple[dict, dict, dict]:
    assert submitted.returncode == 0, submitted.log[-6000:]
    rest = json.loads((submitted.out / "spark_rest.json").read_text())
    app_id = rest["app_id"]
    tree, attempt, app = wait_for(lambda: app_tree(tracker, dag_id, app_id, rest),
                                  f"app {app_id} complete under {dag_id}", 90.0, interval_s=0.25)
    assert attempt["task_id"] == task_id

    # stages: the same set and the same metrics as Spark's REST status API
    ran = assert_stages_match_rest(app, rest["stages"])
    assert sum(1 for s in ran if s["status"] == "FAILED") == 1

    # jobs: all of them, one failed with its error
    jobs = {j["job_id"]: j for j in app["jobs"]}
    assert set(jobs) == {j["jobId"] for j in rest["jobs"]}
    for job in rest["jobs"]:
        assert jobs[job["jobId"]]["result"] == ("succeeded" if job["status"] == "SUCCEEDED" else "failed")
    failed = [j for j in app["jobs"] if j["result"] == "failed"]
    assert len(failed) == 1 and "runlink-e2e-boom" in failed[0]["failure_reason"]

    # queries: each reported once, by the JVM query listener; parquet writes and reads with paths and row counts,
    # the failed one with its error
    queries = app["queries"]
    assert {q["listener"] for q in queries} == {"jvm"}
    out = str(submitted.out)

    def writes(queries: list[dict], name: str) -> list[dict]:
        return [o for q in queries for o in q["outputs"] if (o["path"] or "").rstrip("/").endswith(f"{out}/{name}")]

    def reads(queries: list[dict], name: str) -> list[dict]:
        return [i for q in queries for i in q["inputs"] if (i["path"] or "").rstrip("/").endswith(f"{out}/{name}")]

    assert [o["rows"] for o in writes(queries, "orders")] == [1000]
    assert [o["rows"] for o in writes(queries, "customers")] == [7]
    assert [o["rows"] for o in writes(queries, "totals")] == [7]
    assert writes(queries, "orders")[0]["format"] == "parquet"
    join_reads = {i["path"].rstrip("/").rsplit("/", 1)[1]: i["rows"] for i in reads(queries, "orders")
                  + reads(queries, "customers")}
    assert join_reads == {"orders": 1000, "customers": 7}
    failures = [q for q in queries if not q["success"]]
    assert len(failures) == 1 and "runlink-e2e-boom" in (failures[0]["error"] or {}).get("message", "")

    # log_dataframe in the app: the Python SDK reports to the tracker of the app's conf, under the same attempt
    (logged,) = attempt["datasets"]
    assert (logged["name"], logged["rows"], logged["operation"]) == ("totals", 7, "read")
    assert logged["column_stats"]["n"]["min"] == 142 and len(logged["schema"]) == 3, logged

    # call sites (`file:line function`): every action's, with runlink's wrappers (installed by runlink's conf at
    # the driver's start-up, or by track_session)
    marks = callsite_lines(APP)
    app_path = str(Path(__file__).parent / "apps" / APP)
    assert failures[0]["callsite"] == f"{app_path}:{marks['failing']} <module>"
    (write_orders,) = writes(queries, "orders")
    by_output = {o["id"]: q for q in queries for o in q["outputs"]}
    (write_totals,) = writes(queries, "totals")
    assert by_output[write_orders["id"]]["callsite"] == f"{app_path}:{marks['write_orders']} <module>"
    assert by_output[write_totals["id"]]["callsite"] == f"{app_path}:{marks['write_totals']} <module>"
    return tree, attempt, app


def test_airflow_env_context(tracker: Any, tmp_path: Path, unique: str) -> None:
    """AIRFLOW_CTX_* in the environment, as a parent task sets them; spark-submit gets runlink's conf."""
    listener_jar_or_skip()
    dag_id = f"e2e_env_{unique}"
    conf_args = runlink_spark_conf(clean_env(tmp_path / "home"), "--url", tracker.url)
    assert not any("AIRFLOW_CTX" in a for a in conf_args)  # the context travels in the environment here
    env = clean_env(tmp_path / "home", RUNLINK_TOKEN=tracker.token, **airflow_ctx(dag_id))
    submitted = spark_submit(APP, tmp_path / "out", conf_args, env, "--track-python")
    tree, attempt, app = check_app(tracker, dag_id, submitted)
    assert tree["dag_id"] == dag_id
    assert tree["run_id"] == "scheduled__2026-11-22T10:00:00+00:00"
    assert attempt["try_number"] == 1
    assert app["name"] == "runlink-e2e-etl"


def test_context_as_spark_env_conf(sqlite_tracker: Any, tmp_path: Path, unique: str) -> None:
    """The context given only as `--conf spark.env.AIRFLOW_CTX_*` (the driver's environment has none)."""
    listener_jar_or_skip()
    dag_id = f"e2e_conf_{unique}"
    conf_args = runlink_spark_conf(clean_env(tmp_path / "home", **airflow_ctx(dag_id, run_id=None)),
                                   "--url", sqlite_tracker.url)
    assert f"spark.env.AIRFLOW_CTX_DAG_ID={dag_id}" in conf_args
    env = clean_env(tmp_path / "home", RUNLINK_TOKEN=sqlite_tracker.token)
    submitted = spark_submit(APP, tmp_path / "out", conf_args, env)
    tree, attempt, _ = check_app(sqlite_tracker, dag_id, submitted)
    assert tree["logical_date"].startswith("2026-11-22T10:00:00")


def test_execution_date_as_ds(sqlite_tracker: Any, tmp_path: Path, unique: str) -> None:
    """EXECUTION_DATE as `{{ ds }}`: the app joins the one DAG run with a full logical date on that day."""
    from runlink.protocol.events import make_event

    listener_jar_or_skip()
    dag_id = f"e2e_ds_{unique}"
    full = {"dag_id": dag_id, "execution_date": LOGICAL, "dag_run_id": "scheduled__2026-11-22T10:00:00+00:00",
            "task_id": "spark_etl", "try_number": "1"}
    start = make_event("task_attempt.start", {"state": "running", "start_date": "2026-11-22T10:00:01Z"},
                       context=full, agent="airflow")
    assert sqlite_tracker.post_events([start]).status_code == 202
    ctx = airflow_ctx(dag_id, execution_date="2026-11-22", run_id=None)
    del ctx["AIRFLOW_CTX_TRY_NUMBER"]
    conf_args = runlink_spark_conf(clean_env(tmp_path / "home", **ctx), "--url", sqlite_tracker.url)
    env = clean_env(tmp_path / "home", RUNLINK_TOKEN=sqlite_tracker.token)
    submitted = spark_submit(APP, tmp_path / "out", conf_args, env)
    tree, attempt, _ = check_app(sqlite_tracker, dag_id, submitted)
    runs = sqlite_tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    assert len(runs) == 1 and runs[0]["run_id"] == full["dag_run_id"]
    assert attempt["try_number"] == 1 and attempt["state"] == "running"


# -- the tracker is down or hangs: the application must not notice --------------------------------------


class HangingServer:
    """Accepts connections and never answers: the worst tracker there is."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        self.stopped = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        self.stopped = True
        self.sock.close()
        for conn in self.conns:
            conn.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("failure", ["refused", "hanging"])
def test_tracker_down_or_hanging(failure: str, tmp_path: Path) -> None:
    listener_jar_or_skip()
    server = HangingServer() if failure == "hanging" else None
    port = server.port if server else _closed_port()
    try:
        url = f"http://127.0.0.1:{port}"
        ctx = airflow_ctx(f"e2e_down_{uuid.uuid4().hex[:8]}")
        conf_args = runlink_spark_conf(clean_env(tmp_path / "home", **ctx), "--url", url)
        conf_args += ["--conf", "spark.runlink.flushTimeoutMs=3000"]
        env = clean_env(tmp_path / "home", RUNLINK_TOKEN="x" * 20, RUNLINK_FLUSH_TIMEOUT="3")
        started = time.monotonic()
        submitted = spark_submit(APP, tmp_path / "out", conf_args, env, "--track-python")
        elapsed = time.monotonic() - started
    finally:
        if server:
            server.close()
    assert submitted.returncode == 0, submitted.log[-6000:]
    assert (submitted.out / "spark_rest.json").exists()
    # the undelivered events are counted in the driver log, and waiting for them is bounded
    lines = [line for line in submitted.log.splitlines() if "runlink:" in line and "not delivered" in line]
    assert lines, submitted.log[-4000:]
    assert "dropped" in lines[-1]
    assert elapsed < 300, elapsed
    assert not any("Exception in thread" in line and "runlink" in line for line in submitted.log.splitlines())
    if os.environ.get("RUNLINK_E2E_VERBOSE"):
        print(failure, f"{elapsed:.1f}s", lines[-1])
