"""Syncer benchmark: a real Airflow standalone whose metadata database holds a history of N task instances
(made with Airflow's own ORM: SerializedDAG.create_dagrun + TaskInstance updates), a real tracker, and the monitor.

Figures: the backfill's time; an incremental cycle with 0 changes and with 100 changes (Airflow requests, events,
seconds, DAG structures fetched: they must follow the changes, not the history nor the number of DAGs, `--dags`
small extra DAGs); the monitor's RSS across 50 cycles (10 task instances
changed through Airflow's REST API before each cycle).

    .venv/bin/python scripts/bench_syncer.py [--runs 1000] [--tasks 10] [--cycles 50] [--dags 200] [--sqlite]

Airflow's metadata database is a fresh PostgreSQL database at 127.0.0.1:5432 (dropped at the end); `--sqlite`
(or no server) uses SQLite instead.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.* (as under pytest)
sys.path.insert(0, str(ROOT / "python"))

from support.airflow_standalone import start_standalone  # noqa: E402

BENCH_DAG = '''
from datetime import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

with DAG("bench_history", schedule=None, start_date=datetime(2020, 1, 1), catchup=False, tags=["bench"]) as dag:
    previous = None
    for i in range({tasks}):
        task = EmptyOperator(task_id=f"t{{i:02d}}")
        if previous is not None:
            previous >> task
        previous = task
'''

# many small DAGs: an unchanged DAG must cost no request beyond the DAG list (its structure is cached)
MANY_DAGS = '''
from datetime import datetime
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for n in range({dags}):
    with DAG(f"bench_many_{{n:04d}}", schedule=None, start_date=datetime(2020, 1, 1), catchup=False) as dag:
        EmptyOperator(task_id="a") >> EmptyOperator(task_id="b")
    globals()[f"dag_{{n}}"] = dag
'''

POPULATE = '''
import json, sys
from datetime import datetime, timedelta, timezone
from sqlalchemy import update
from airflow.models.dagrun import DagRun
from airflow.models.serialized_dag import SerializedDagModel
from airflow.models.taskinstance import TaskInstance as TI
from airflow.utils.session import create_session
from airflow.utils.state import DagRunState, TaskInstanceState
from airflow.utils.types import DagRunTriggeredByType, DagRunType

runs = int(sys.argv[1])
old = datetime.now(timezone.utc) - timedelta(days=3)
base = datetime(2025, 1, 1, tzinfo=timezone.utc)
with create_session() as session:
    dag = SerializedDagModel.get_dag("bench_history", session=session)
    for i in range(runs):
        when = base + timedelta(hours=i)
        dag.create_dagrun(run_id=f"bench_{i:05d}", logical_date=when, data_interval=(when, when),
                          run_after=when, run_type=DagRunType.MANUAL, triggered_by=DagRunTriggeredByType.TEST,
                          state=DagRunState.SUCCESS, start_date=when, session=session)
        if i % 100 == 99:
            session.commit()
    session.commit()
    session.execute(update(TI).where(TI.dag_id == "bench_history").values(
        state=TaskInstanceState.SUCCESS, try_number=1, start_date=old, end_date=old + timedelta(seconds=5),
        duration=5.0, updated_at=old).execution_options(synchronize_session=False))
    session.execute(update(DagRun).where(DagRun.dag_id == "bench_history").values(
        end_date=old + timedelta(seconds=60), updated_at=old).execution_options(synchronize_session=False))
    session.commit()
    print(json.dumps({"task_instances": session.query(TI).filter(TI.dag_id == "bench_history").count()}))
'''


def rss_mb() -> float:
    return round(psutil.Process().memory_info().rss / 1e6, 1)


def pg_database() -> tuple[str | None, str | None]:
    """(SQLAlchemy URL of a fresh database, admin URL) or (None, None) when no server answers."""
    try:
        import psycopg
    except ImportError:
        return None, None
    for user in ("postgres", "root"):
        admin = f"postgresql://{user}@127.0.0.1:5432/test"
        try:
            with psycopg.connect(admin, autocommit=True, connect_timeout=3) as conn:
                name = f"airflow_bench_{uuid.uuid4().hex[:10]}"
                conn.execute(f'CREATE DATABASE "{name}"')
                return f"postgresql+psycopg://{user}@127.0.0.1:5432/{name}", admin
        except psycopg.Error:
            continue
    return None, None


def drop_pg(url: str, admin: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--tasks", type=int, default=10)
    parser.add_argument("--cycles", type=int, default=50)
    parser.add_argument("--changes-per-cycle", type=int, default=10)
    parser.add_argument("--dags", type=int, default=200, help="small extra DAGs (structure caching)")
    parser.add_argument("--sqlite", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-syncer-"))
    db_url, admin = (None, None) if args.sqlite else pg_database()
    airflow_home = work / "airflow"
    dags = work / "dags-src"
    dags.mkdir(parents=True)
    (dags / "bench_history.py").write_text(BENCH_DAG.format(tasks=args.tasks))
    if args.dags:
        (dags / "bench_many.py").write_text(MANY_DAGS.format(dags=args.dags))
    env = {"RUNLINK_TRACKING": "false", "PYTHONPATH": str(ROOT / "python")}
    figures: dict = {"runs": args.runs, "tasks_per_run": args.tasks, "extra_dags": args.dags,
                     "airflow_db": "postgresql" if db_url else "sqlite"}
    standalone = tracker = None
    try:
        t0 = time.monotonic()
        standalone = start_standalone(airflow_home, dags, env=env, sql_alchemy_conn=db_url)
        standalone.wait_dag("bench_history")
        if args.dags:
            standalone.wait_dag(f"bench_many_{args.dags - 1:04d}")
        figures["standalone_start_s"] = round(time.monotonic() - t0, 1)

        t0 = time.monotonic()
        airflow_env = {**os.environ, "AIRFLOW_HOME": str(airflow_home), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                       "AIRFLOW__CORE__DAGS_FOLDER": str(airflow_home / "dags"), **env}
        if db_url:
            airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = db_url
            airflow_env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC"] = db_url
        out = subprocess.run([sys.executable, "-c", POPULATE, str(args.runs)], capture_output=True, text=True,
                             env=airflow_env, timeout=3600)
        if out.returncode != 0:
            raise RuntimeError(out.stderr[-4000:])
        figures["history_task_instances"] = json.loads(out.stdout.strip().splitlines()[-1])["task_instances"]
        figures["history_setup_s"] = round(time.monotonic() - t0, 1)
        print(f"history: {figures['history_task_instances']} task instances in {figures['history_setup_s']}s",
              file=sys.stderr)

        from support.tracker import start_tracker  # the tests' real-tracker launcher

        tracker_home = work / "tracker"
        tracker = start_tracker(tracker_home, f"sqlite:///{tracker_home / 'runlink.db'}", "sqlite")
        os.environ["AIRFLOW_BENCH_PASSWORD"] = standalone.password
        from runlink.airflow.monitor import Monitor
        from runlink.api_client import TrackerClient
        from runlink.config import load

        config = load(url=tracker.url, token=tracker.token, home=str(tracker_home))
        api = TrackerClient.from_config(config)
        api.create_instance({"name": "bench", "url": standalone.url, "uid": "bench-uid", "api_version": "v2",
                             "auth_kind": "password", "username": standalone.username,
                             "secret_ref": "env:AIRFLOW_BENCH_PASSWORD"})

        rss0 = rss_mb()
        monitor = Monitor(config, ["bench"], since="2000-01-01", progress=True)
        backfill = monitor.cycle()[0]
        assert backfill.ok, backfill.error
        figures["backfill"] = {k: getattr(backfill, k) for k in
                               ("seconds", "dags", "dag_details", "dag_runs", "task_instances", "tries", "events",
                                "accepted", "airflow_requests")}
        figures["backfill"]["rss_before_mb"] = rss0
        figures["backfill"]["rss_after_mb"] = rss_mb()

        zero = monitor.cycle()[0]
        assert zero.ok, zero.error
        figures["incremental_0_changes"] = {k: getattr(zero, k) for k in
                                            ("seconds", "dags", "dag_details", "task_instances", "events", "accepted",
                                             "airflow_requests")}

        def change(n: int, state: str) -> None:
            for i in range(n):
                run = f"bench_{(i * 7) % args.runs:05d}"
                task = f"t{i % args.tasks:02d}"
                standalone.api("PATCH", f"/dags/bench_history/dagRuns/{run}/taskInstances/{task}",
                               json={"new_state": state})

        change(100, "failed")
        hundred = monitor.cycle()[0]
        assert hundred.ok, hundred.error
        figures["incremental_100_changes"] = {k: getattr(hundred, k) for k in
                                              ("seconds", "dag_details", "dag_runs", "task_instances", "events",
                                               "accepted", "airflow_requests")}

        rss = []
        for cycle in range(args.cycles):
            change(args.changes_per_cycle, "success" if cycle % 2 == 0 else "failed")
            result = monitor.cycle()[0]
            assert result.ok, result.error
            rss.append(rss_mb())
        figures["rss_cycles"] = {"cycles": args.cycles, "changes_per_cycle": args.changes_per_cycle,
                                 "first_mb": rss[0], "last_mb": rss[-1], "max_mb": max(rss), "min_mb": min(rss)}
        state = api.sync_state("bench")
        figures["tracker_sync_state"] = {k: state[k] for k in ("watermark", "lag_s", "events_sent", "last_error")}
        monitor.close()
        api.close()
    finally:
        if tracker is not None:
            tracker.stop()
        if standalone is not None:
            standalone.stop()
        if db_url and admin:
            drop_pg(db_url, admin)
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
