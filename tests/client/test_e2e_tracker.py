"""The client against the REAL tracker (`runlink server` subprocesses) and real child processes.

(a) tracker down while logging: no exception, events spooled, nothing lost once it is up on the same port;
(b) tracker hanging (accepts TCP, never answers): a child process still exits within the flush bound;
(c) two OS processes with one Airflow context in two spellings: all metrics in ONE task attempt.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

from servers import HangingServer

from runlink.config import Config
from runlink.delivery import Client
from runlink.spool import Spool, spool_key
from runlink.tracker.process import free_port
from support.tracker import Tracker
from support.waiting import wait_for

LOGGER = textwrap.dedent("""
    import sys, runlink
    prefix, count = sys.argv[1], int(sys.argv[2])
    for i in range(count):
        runlink.log_metric(f"{prefix}{i}", i)
""")


def _run_child(env: dict[str, str], prefix: str, count: int, timeout: float = 60) -> tuple[float, Any]:
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", LOGGER, prefix, str(count)], env=env, capture_output=True,
                          text=True, timeout=timeout)
    return time.monotonic() - start, done


def _attempt_metrics(get_json: Any, dag_id: str) -> tuple[list[dict], dict[str, Any]]:
    """(task attempts of the dag's runs, metrics by key across them) as the tracker's API shows them."""
    runs = get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    attempts = []
    for run in runs:
        attempts += get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]
    metrics = {m["key"]: m["value"] for a in attempts for m in a["metrics"]}
    return attempts, metrics


def test_a_tracker_down_while_logging_then_up_on_the_same_port_loses_nothing(child_env: dict,
                                                                           clean_env: Path) -> None:
    port = free_port()
    token = "rl-" + secrets.token_hex(16)
    clean_env.mkdir(parents=True, exist_ok=True)
    (clean_env / "token").write_text(token)  # the client reads $RUNLINK_HOME/token; the tracker adopts it
    dag_id = f"down_{uuid.uuid4().hex[:8]}"
    airflow = {"AIRFLOW_CTX_DAG_ID": dag_id, "AIRFLOW_CTX_EXECUTION_DATE": "2026-11-22T10:00:00+00:00",
               "AIRFLOW_CTX_TASK_ID": "t", "AIRFLOW_CTX_TRY_NUMBER": "1"}
    env = dict(child_env, RUNLINK_URL=f"http://127.0.0.1:{port}", **airflow)

    # 1. A whole task process runs and exits while nothing listens on the port.
    elapsed, done = _run_child(env, "child_", 300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    spool = Spool(clean_env / "spool" / spool_key(f"http://127.0.0.1:{port}"), 10**9)
    assert spool.pending_events() >= 300

    # 2. This process keeps logging while the tracker is still down.
    os.environ.update(airflow)
    try:
        cfg = Config(url=f"http://127.0.0.1:{port}", token=token, home=clean_env, batch_interval_s=0.05)
        client = Client(cfg, backoff_base_s=0.01, backoff_max_s=0.5)
        from runlink import delivery, sdk

        delivery.set_client(client)
        for i in range(200):
            sdk.log_metric(f"parent_{i}", i)  # never raises
        assert client.flush(5)
        assert client.spooled >= 200 and client.sent == 0
    finally:
        for name in airflow:
            os.environ.pop(name, None)

    # 3. The tracker comes up on the same port: the live client finds it and replays every spool file.
    tracker = Tracker(clean_env, port=port).start()
    try:
        expected = {f"child_{i}": i for i in range(300)} | {f"parent_{i}": i for i in range(200)}

        def all_metrics() -> bool:
            return _attempt_metrics(lambda p, **q: tracker.get_json(p, token=token, **q), dag_id)[1] == expected

        wait_for(all_metrics, deadline_s=60, interval_s=0.2)
        attempts, _ = _attempt_metrics(lambda p, **q: tracker.get_json(p, token=token, **q), dag_id)
        assert len(attempts) == 1 and attempts[0]["task_id"] == "t"
        wait_for(lambda: not [n for n in os.listdir(spool.directory)], deadline_s=30)
        assert client.replayed >= 500
    finally:
        tracker.stop()


def test_b_hanging_tracker_child_exits_within_the_flush_bound(child_env: dict) -> None:
    bound = 2.0
    hanging = HangingServer()
    try:
        env = dict(child_env, RUNLINK_URL=hanging.url, RUNLINK_TOKEN="t", RUNLINK_FLUSH_TIMEOUT=str(bound),
                   AIRFLOW_CTX_DAG_ID="hang")
        baseline, base_done = _run_child(dict(env, RUNLINK_TRACKING="false"), "m", 2000)
        assert base_done.returncode == 0, base_done.stderr
        elapsed, done = _run_child(env, "m", 2000)
        assert done.returncode == 0, done.stderr
        assert hanging.connections, "the child never reached the hanging tracker"
        # the process takes the bound plus its own start-up (measured with tracking off) plus a margin
        assert elapsed < bound + baseline + 1.5, f"exit took {elapsed:.2f}s (bound {bound}s, start-up {baseline:.2f}s)"
        spool = Spool(Path(child_env["RUNLINK_HOME"]) / "spool" / spool_key(hanging.url), 10**9)
        assert spool.pending_events() >= 2000  # what could not be sent in time is on disk
    finally:
        hanging.stop()


def test_c_two_processes_two_spellings_one_task_attempt(tracker: Any, child_env: dict, unique: str) -> None:
    dag_id = f"spell_{unique}"
    common = dict(child_env, RUNLINK_URL=tracker.url, RUNLINK_TOKEN=tracker.token, AIRFLOW_CTX_DAG_ID=dag_id,
                  AIRFLOW_CTX_TASK_ID="transform", AIRFLOW_CTX_TRY_NUMBER="1")
    full = dict(common, AIRFLOW_CTX_EXECUTION_DATE="2026-11-22T06:30:00+00:00")
    date_only = dict(common, AIRFLOW_CTX_EXECUTION_DATE="2026-11-22")
    procs = [subprocess.Popen([sys.executable, "-c", LOGGER, prefix, "50"], env=env, stderr=subprocess.PIPE,
                              text=True)
             for prefix, env in (("full_", full), ("date_", date_only))]
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
    expected = {f"full_{i}": i for i in range(50)} | {f"date_{i}": i for i in range(50)}

    def landed() -> bool:
        return _attempt_metrics(tracker.get_json, dag_id)[1] == expected

    wait_for(landed, deadline_s=30, interval_s=0.1)
    runs = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    assert len(runs) == 1
    attempts, _ = _attempt_metrics(tracker.get_json, dag_id)
    assert len(attempts) == 1, [a["id"] for a in attempts]
    detail = tracker.get_json(f"/api/v1/task-attempts/{attempts[0]['id']}")
    assert {m["key"] for m in detail["metrics"]} == set(expected)


def test_agent_health_at_exit_reaches_the_tracker(tracker: Any, child_env: dict, unique: str) -> None:
    from sqlalchemy import create_engine, text

    dag_id = f"health_{unique}"
    env = dict(child_env, RUNLINK_URL=tracker.url, RUNLINK_TOKEN=tracker.token, AIRFLOW_CTX_DAG_ID=dag_id,
               AIRFLOW_CTX_EXECUTION_DATE="2026-11-22T00:00:00Z", AIRFLOW_CTX_TASK_ID="t")
    proc = subprocess.Popen([sys.executable, "-c", LOGGER, "k", "10"], env=env, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    wait_for(lambda: len(_attempt_metrics(tracker.get_json, dag_id)[1]) == 10, deadline_s=30)
    engine = create_engine(tracker.db_url)
    try:
        def report() -> Any:
            with engine.connect() as conn:
                return conn.execute(text("SELECT events_sent, events_dropped, events_spooled, send_errors, reason "
                                         "FROM agent_health WHERE pid = :pid"), {"pid": proc.pid}).all()

        rows = wait_for(report, deadline_s=30)
        assert [tuple(r) for r in rows] == [(10, 0, 0, 0, "exit")]
    finally:
        engine.dispose()
