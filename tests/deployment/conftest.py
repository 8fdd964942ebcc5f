"""Deployment fixtures: one real Airflow deployment at a time, with runlink's plugin on (installed through entry
points, nothing pinned), a real tracker, the test DAG run to its end, the instance registered without --uid and
one `runlink monitor --once`.

- `standalone`: `airflow standalone` (LocalExecutor) of this interpreter's Airflow, or of
  RUNLINK_SYNCER_AIRFLOW_PYTHON (Airflow 2.11 from scripts/test-airflow2.sh);
- `celery`: CeleryExecutor, a real Redis broker and separate api-server, scheduler, dag-processor and
  celery worker processes on a PostgreSQL metadata database (Airflow 3).

`deployment_session` is parametrized over both at session scope, so pytest stops one before it starts the
other (two Airflows at once would not fit a 2-core machine). Each phase's wall time is kept in `timings`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from deployment_checks import (
    DAG_ID,
    HERE,
    LOGICAL_DATE,
    RUN_ID,
    airflow_attempts,
    airflow_env,
    monitor_once,
    register,
    uids_reported,
    wait_for_evidence,
    without_pinned_uid,
)

from support.airflow_standalone import Standalone, airflow_python, airflow_version, start_standalone

RUN_DEADLINE_S = 600.0  # a bound for a stuck run; Airflow 2.11 under a load of 12 on 2 cores took 265 s


@dataclass
class Deployment:
    kind: str
    airflow: Standalone
    tracker: Any
    run_id: str
    state: str
    registered: str
    monitor: dict[str, Any]
    truth: dict[tuple[str, int], dict[str, Any]]
    missing: list[str]
    timings: dict[str, float] = field(default_factory=dict)


def _start(kind: str, home: Path, env: dict[str, str], request: pytest.FixtureRequest) -> Standalone:
    python = airflow_python()
    if kind == "standalone":
        return start_standalone(home, HERE / "dags", env=env, python=python)
    from celery_cluster import start_celery_airflow

    metadata_url = request.getfixturevalue("pg_url")  # a fresh PostgreSQL database (tests/conftest.py)
    return start_celery_airflow(home, HERE / "dags", metadata_url, python, env=env)


@pytest.fixture(scope="session", params=["standalone", "celery"])
def deployment_session(request: pytest.FixtureRequest, tracker_factory: Any,
                       tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment | str]:
    """The deployment, or why it could not be made (a string): a set-up failure is kept, not raised, so the
    rerun of a failed test (scripts/test.sh --reruns 1) does not start Airflow once more per test."""
    kind = request.param
    if kind == "celery" and not airflow_version().startswith("3."):
        pytest.skip("CeleryExecutor leg on Airflow 3 only: on 2.11 it needs another component set (webserver, "
                    "no api-server/dag-processor) and psycopg2 for PostgreSQL (SQLAlchemy 1.4 has no psycopg 3 "
                    "dialect), which .venv-airflow2 does not install; the 2.11 leg runs the standalone")
    without_pinned_uid()
    timings: dict[str, float] = {}
    began = time.monotonic()
    tracker = tracker_factory(backend="sqlite")
    home = tmp_path_factory.mktemp(f"airflow-{kind}")
    airflow: Standalone | None = None
    try:
        airflow = _start(kind, home, airflow_env(tracker.url, tracker.make_token("ingest"), home), request)
        timings["start"] = time.monotonic() - began
        mark = time.monotonic()
        airflow.wait_dag(DAG_ID)
        run_id = airflow.trigger(DAG_ID, LOGICAL_DATE, RUN_ID)
        state = airflow.wait_run(DAG_ID, run_id, RUN_DEADLINE_S)
        timings["dag_run"] = time.monotonic() - mark
        mark = time.monotonic()
        registered = register(tracker, airflow)
        monitor = monitor_once(tracker)
        timings["register_and_sync"] = time.monotonic() - mark
        truth = airflow_attempts(airflow, DAG_ID, run_id)
        mark = time.monotonic()
        missing = wait_for_evidence(tracker, truth)
        timings["evidence"] = time.monotonic() - mark
        made: Deployment | str = Deployment(kind=kind, airflow=airflow, tracker=tracker, run_id=run_id, state=state,
                                            registered=registered, monitor=monitor, truth=truth, missing=missing,
                                            timings=timings)
    except Exception as exc:  # noqa: BLE001 - reported by every test of this deployment
        made = f"the {kind} deployment could not be set up: {type(exc).__name__}: {exc}"[:20000]
    try:
        yield made
    finally:
        sys.stderr.write(f"\n[deployment {kind}] uids reported per component: {uids_reported(tracker)}")
        mark = time.monotonic()
        if airflow is not None:
            airflow.stop()
        timings["stop"] = time.monotonic() - mark
        total = time.monotonic() - began
        sys.stderr.write(f"\n[deployment {kind}] wall times (s): "
                         + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()) + f", total {total:.1f}\n")


@pytest.fixture
def deployment(deployment_session: Deployment | str) -> Deployment:
    if isinstance(deployment_session, str):
        pytest.fail(deployment_session, pytrace=False)
    return deployment_session
