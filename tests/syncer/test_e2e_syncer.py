"""The syncer against a real `airflow standalone` and real trackers (`runlink server` subprocesses).

One standalone serves the module (start-up costs ~40 s); each test uses its own tracker so their counts do not mix.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from syncer_helpers import (
    DAG_ID,
    HERE,
    LOGICAL_DATE,
    ROOT,
    RUN_ID,
    UID_A,
    UID_B,
    airflow_truth,
    ingested_total,
    monitor_once,
    register,
    standalone_env,
    tracker_view,
)

from support.cli import runlink_cli

pytestmark = pytest.mark.airflow

EXPECTED = {
    ("ok", -1, 1, "success"),
    ("boom", -1, 1, "failed"),
    ("after_boom", -1, 0, "upstream_failed"),
    ("flaky", -1, 2, "success"),
    ("skip_me", -1, 1, "skipped"),
}


def _db_events(tracker: Any) -> int:
    path = tracker.db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_one_sync_equals_airflow_and_a_second_writes_nothing(airflow_a, finished_run, tracker_factory) -> None:
    tracker = tracker_factory(backend="sqlite")
    register(tracker, "main", airflow_a, UID_A)
    first = monitor_once(tracker, "main")
    assert first["accepted"] > 0 and first["dag_runs"] >= 1 and first["tries"] >= 6

    truth = airflow_truth(airflow_a, DAG_ID)
    view = tracker_view(tracker, DAG_ID, UID_A)
    assert view == truth
    run = truth[RUN_ID]
    assert run["state"] == "failed"
    # Airflow's own words for the retried task's first try, whatever this version calls it
    flaky_first = {a for a in run["attempts"] if a[0] == "flaky" and a[2] == 1}
    assert len(flaky_first) == 1 and next(iter(flaky_first))[3] in ("failed", "up_for_retry")
    assert EXPECTED <= run["attempts"]

    instance = tracker.get_json("/api/v1/airflow-instances/main")
    assert instance["api_version"] == airflow_a.api_version  # detected: v1 on Airflow 2.11, v2 on Airflow 3
    assert instance["credentials"] == "set" and airflow_a.password not in str(instance)
    assert instance["sync_state"]["last_error"] is None and instance["sync_state"]["watermark"]

    # a second sync with no change: the tracker stores nothing new (its counter, its table, the syncer's count)
    before_counter, before_rows = ingested_total(tracker), _db_events(tracker)
    second = monitor_once(tracker, "main")
    assert second["accepted"] == 0 and second["duplicates"] == second["events"]
    assert ingested_total(tracker) == before_counter
    assert _db_events(tracker) == before_rows
    # the second cycle was incremental: it started from the watermark (minus the overlap), and no DAG changed, so
    # no DAG's structure was fetched again
    assert second["window_start"] is not None
    assert first["dag_details"] == first["dags"] >= 1 and second["dags"] == first["dags"]
    assert second["dag_details"] == 0
    assert tracker_view(tracker, DAG_ID, UID_A) == truth


def test_dag_structure_synced(airflow_a, finished_run, tracker_factory) -> None:
    tracker = tracker_factory(backend="sqlite")
    register(tracker, "main", airflow_a, UID_A)
    monitor_once(tracker, "main")
    path = tracker.db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT uid, schedule, owners, tags, fileloc, tasks FROM dags WHERE dag_id = ?",
                           (DAG_ID,)).fetchone()
    import json

    uid, _schedule, owners, tags, fileloc, tasks = row
    assert uid == UID_A
    assert json.loads(owners) == ["syncer-tests"] and json.loads(tags) == ["runlink", "syncer-test"]
    assert fileloc.endswith("syncer_e2e.py")
    by_id = {t["task_id"]: t for t in json.loads(tasks)}
    assert by_id["ok"]["downstream"] == ["boom", "flaky"] and by_id["after_boom"]["upstream"] == ["boom"]
    assert by_id["ok"]["operator"].endswith("BashOperator") and by_id["flaky"]["retries"] == 1


def test_credentials_never_returned(airflow_a, tracker_factory) -> None:
    tracker = tracker_factory(backend="sqlite")
    register(tracker, "main", airflow_a, UID_A)
    for path in ("/api/v1/airflow-instances", "/api/v1/airflow-instances/main",
                 "/api/v1/airflow-instances/main/sync-state", "/api/v1/airflow-instances/main/syncer-config"):
        assert airflow_a.password not in tracker.get(path).text
    listing = runlink_cli(tracker, "airflow", "list", "--json")
    assert airflow_a.password not in listing.stdout and '"credentials": "set"' in listing.stdout
    key = tracker.home / "secret.key"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    path = tracker.db_url.split("sqlite:///", 1)[1]
    assert airflow_a.password.encode() not in Path(path).read_bytes()
    # a read token sees the public view, not the sealed secret
    read = tracker.make_token("read")
    assert tracker.get("/api/v1/airflow-instances/main/syncer-config", token=read).status_code == 403
    ingest = tracker.make_token("ingest")
    ok = tracker.get("/api/v1/airflow-instances/main/sync-state", token=ingest)
    assert ok.status_code == 200
    denied = subprocess_put(tracker, read)
    assert denied == 403


def subprocess_put(tracker: Any, token: str) -> int:
    import requests

    return requests.put(tracker.url + "/api/v1/airflow-instances/main/sync-state", json={"last_error": "x"},
                        headers={"Authorization": f"Bearer {token}"}, timeout=30).status_code


def test_monitor_dag_gives_the_same_result(airflow_a, finished_run, tracker_factory) -> None:
    """get_monitor_dag() run with dag.test() in a process configured as that Airflow (its AIRFLOW_HOME),
    credentials from an Airflow connection."""
    reference = tracker_factory(backend="sqlite")
    register(reference, "main", airflow_a, UID_A)
    monitor_once(reference, "main")

    tracker = tracker_factory(backend="sqlite")
    runlink_cli(tracker, "airflow", "add", "main", "--url", airflow_a.url, "--uid", UID_A,
                "--password-ref", "airflow-conn:runlink_airflow_main", "--username", airflow_a.username)
    conn = {"conn_type": "http", "host": "127.0.0.1", "port": airflow_a.port, "login": airflow_a.username,
            "password": airflow_a.password}
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_a.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_a.home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_RUNLINK_AIRFLOW_MAIN": __import__("json").dumps(conn),
        "RUNLINK_URL": tracker.url,
        "RUNLINK_TOKEN": tracker.token,
        "RUNLINK_HOME": str(tracker.home),
        "RUNLINK_TRACKING": "false",
        "PYTHONPATH": str(ROOT / "python"),
    }
    # deployed as users do: a DAG file in the DAGs folder (Airflow serializes it; dag.test() needs that)
    dag_file = airflow_a.home / "dags" / "runlink_monitor_dag.py"
    dag_file.write_text("from runlink.airflow.monitor import get_monitor_dag\n\ndag = get_monitor_dag('main')\n")
    airflow_a.wait_dag("runlink_monitor")
    script = ("import importlib.util\n"
              f"spec = importlib.util.spec_from_file_location('monitor_dag', {str(dag_file)!r})\n"
              "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
              "dag = module.dag\n"
              "assert dag.max_active_runs == 1\n"
              "run = dag.test()\n"
              "print('MONITOR_DAG_STATE', run.state)\n")
    # the Airflow the standalone runs (2.11 from its own venv in the 2.11 variant)
    result = subprocess.run([airflow_a.python, "-c", script], capture_output=True, text=True, env=env, timeout=600,
                            cwd=str(ROOT))
    assert "MONITOR_DAG_STATE success" in result.stdout, (result.stdout[-3000:], result.stderr[-5000:])
    assert tracker_view(tracker, DAG_ID, UID_A) == tracker_view(reference, DAG_ID, UID_A)
    assert tracker.get_json("/api/v1/airflow-instances/main/sync-state")["last_success_at"]


def test_two_instances_stay_apart(airflow_a, finished_run, tracker_factory, tmp_path_factory) -> None:
    """A second real Airflow (its own home and database) with the same DAG, the same run_id and the same logical
    date, but a different outcome (`boom` succeeds there). One tracker, one monitor serving both."""
    from support.airflow_standalone import start_standalone

    if airflow_a.api_version == "v1":
        pytest.skip("Airflow 3 only: keeping instances apart is the tracker's part, the same for both API versions "
                    "(a second 2.11 standalone would double the 2.11 step's time)")
    home = tmp_path_factory.mktemp("airflow-b")
    airflow_b = start_standalone(home, HERE / "dags", env=standalone_env(UID_B, None, home, flavor="b"),
                                 parallelism=2)
    try:
        airflow_b.wait_dag(DAG_ID)
        run_id = airflow_b.trigger(DAG_ID, LOGICAL_DATE, RUN_ID)
        assert airflow_b.wait_run(DAG_ID, run_id) == "success"
        tracker = tracker_factory(backend="sqlite")
        register(tracker, "alpha", airflow_a, UID_A)
        register(tracker, "beta", airflow_b, UID_B)
        result = runlink_cli(tracker, "monitor", "--once", "--json")  # every registered instance
        assert result.stdout.count('"ok": true') == 2, result.stdout
        truth_a, truth_b = airflow_truth(airflow_a, DAG_ID), airflow_truth(airflow_b, DAG_ID)
        assert truth_a[RUN_ID] != truth_b[RUN_ID]
        assert tracker_view(tracker, DAG_ID, UID_A) == truth_a
        assert tracker_view(tracker, DAG_ID, UID_B) == truth_b
        both = tracker.get_json("/api/v1/dag-runs", dag_id=DAG_ID, run_id=RUN_ID)["items"]
        assert sorted(r["uid"] for r in both) == [UID_A, UID_B]
        states = {r["uid"]: r["state"] for r in both}
        assert states == {UID_A: "failed", UID_B: "success"}
        instances = {i["name"]: i for i in tracker.get_json("/api/v1/airflow-instances")["items"]}
        assert instances["alpha"]["sync_state"]["last_success_at"]
        assert instances["beta"]["sync_state"]["last_success_at"]
    finally:
        airflow_b.stop()


SHAPE_DAG = """
from datetime import datetime
try:
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG
    from airflow.operators.empty import EmptyOperator

with DAG("syncer_shape", schedule=None, start_date=datetime(2024, 1, 1), catchup=False, tags=["syncer-test"]) as dag:
    {body}
"""


def _tracker_tasks(tracker: Any, dag_id: str) -> list[str]:
    path = tracker.db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        row = conn.execute("SELECT tasks FROM dags WHERE dag_id = ?", (dag_id,)).fetchone()
    return sorted(t["task_id"] for t in json.loads(row[0])) if row else []


def _tracker_dag(tracker: Any, dag_id: str) -> dict[str, Any]:
    path = tracker.db_url.split("sqlite:///", 1)[1]
    with sqlite3.connect(path) as conn:
        conn.row_factory = sqlite3.Row
        return dict(conn.execute("SELECT * FROM dags WHERE dag_id = ?", (dag_id,)).fetchone())


def test_structure_fetched_only_when_a_dag_changed(airflow_a, finished_run, tracker_factory) -> None:
    """Cycle cost follows changes, not the number of DAGs: a new DAG costs its own structure request, an unchanged
    one none, and a DAG whose tasks changed is fetched again (Airflow 3: its new DAG version; Airflow 2.11, which
    has no such signal: the first task instance of the new task). A DAG that disappears from Airflow (stale, then
    deleted) is marked gone in the tracker, not kept as live."""
    dag_file = airflow_a.home / "dags" / "syncer_shape.py"
    dag_file.write_text(SHAPE_DAG.format(body='EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")'))
    airflow_a.wait_dag("syncer_shape")
    tracker = tracker_factory(backend="sqlite")
    register(tracker, "main", airflow_a, UID_A)
    first = monitor_once(tracker, "main")
    assert first["dag_details"] == first["dags"] >= 2
    assert _tracker_tasks(tracker, "syncer_shape") == ["a", "b"]
    assert monitor_once(tracker, "main")["dag_details"] == 0

    dag_file.write_text(SHAPE_DAG.format(
        body='EmptyOperator(task_id="a") >> EmptyOperator(task_id="b") >> EmptyOperator(task_id="c")'))
    airflow_a.wait_for("the new task parsed",
                       lambda: "c" in {t["task_id"] for t in airflow_a.api("GET", "/dags/syncer_shape/tasks")["tasks"]},
                       180)
    run_id = airflow_a.trigger("syncer_shape", None if airflow_a.api_version == "v2" else "2026-03-02T00:00:00Z",
                               "shape_run_1")
    assert airflow_a.wait_run("syncer_shape", run_id) == "success"
    third = monitor_once(tracker, "main")
    assert third["dag_details"] == 1, third
    assert _tracker_tasks(tracker, "syncer_shape") == ["a", "b", "c"]
    truth = airflow_truth(airflow_a, "syncer_shape")
    assert tracker_view(tracker, "syncer_shape", UID_A) == truth
    assert monitor_once(tracker, "main")["dag_details"] == 0
    assert _tracker_dag(tracker, "syncer_shape")["is_active"] == 1

    # the DAG's file removed: Airflow marks it stale, the tracker marks it gone (and keeps what it knew)
    dag_file.unlink()
    stale_key = "is_stale" if airflow_a.api_version == "v2" else "is_active"
    airflow_a.wait_for("the DAG marked stale",
                       lambda: airflow_a.api("GET", "/dags/syncer_shape")[stale_key] is (stale_key == "is_stale"), 180)
    fourth = monitor_once(tracker, "main")
    assert fourth["dag_details"] == 0 and fourth["accepted"] >= 1
    gone = _tracker_dag(tracker, "syncer_shape")
    assert gone["is_active"] == 0 and _tracker_tasks(tracker, "syncer_shape") == ["a", "b", "c"]
    listed = tracker.get_json("/api/v1/views/dags")["items"]
    assert [d["is_active"] for d in listed if d["dag_id"] == "syncer_shape"] == [False]
    assert [d["is_active"] for d in listed if d["dag_id"] == DAG_ID] == [True]
    # then deleted from Airflow altogether (runs and all): still marked gone, its history stays in the tracker
    airflow_a.api("DELETE", "/dags/syncer_shape")
    fifth = monitor_once(tracker, "main")
    assert fifth["dags_gone"] == 1 and fifth["dag_details"] == 0
    assert _tracker_dag(tracker, "syncer_shape")["is_active"] == 0
    assert tracker_view(tracker, "syncer_shape", UID_A) == truth
    assert monitor_once(tracker, "main")["dags_gone"] == 0


def test_small_pages_see_every_task_instance(airflow_a, finished_run) -> None:
    """Paging: with pages of 2 records the client still yields every DAG run and task instance Airflow has
    (2.11's task instance list cannot be ordered: it is read in updated_at slices that each fit a page)."""
    from runlink.airflow.syncer.rest import Credentials, make_client

    client = make_client(airflow_a.url, Credentials(airflow_a.username, airflow_a.password),
                         airflow_a.api_version)
    client.page = 2
    try:
        runs = {(r["dag_id"], r["dag_run_id"], r["state"]) for r in client.dag_runs(None)}
        tis = [(t["dag_id"], t["dag_run_id"], t["task_id"], t["try_number"], t["state"])
               for t in client.task_instances(None)]
        since_start = {(t["dag_id"], t["task_id"]) for t in client.task_instances(LOGICAL_DATE)}
    finally:
        client.close()
    truth_runs = {(r["dag_id"], r["dag_run_id"], r["state"])
                  for r in airflow_a.api("GET", "/dags/~/dagRuns", params={"limit": 100})["dag_runs"]}
    truth_tis = {(t["dag_id"], t["dag_run_id"], t["task_id"], t["try_number"], t["state"])
                 for t in airflow_a.api("GET", "/dags/~/dagRuns/~/taskInstances",
                                        params={"limit": 100})["task_instances"]}
    assert len(truth_tis) >= 5 and runs == truth_runs
    assert set(tis) == truth_tis and len(tis) == len(truth_tis)  # none missing, none twice
    assert {(d, t) for d, _r, t, _n, _s in truth_tis} == since_start
