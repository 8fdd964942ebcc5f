"""Syncer end-to-end fixtures: a real `airflow standalone` (one per session), the test DAG run to completion, and
a recorder that keeps what the Airflow plugin's listener sends (so tests can deliver the runtime events to a
real tracker before or after the sync).

The recorder stands in for a tracker only as a place to *capture* the listener's real events; every assertion
is made against a real `runlink server`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from syncer_helpers import DAG_ID, HERE, LOGICAL_DATE, RUN_ID, UID_A, Recorder, runtime_missing, standalone_env

from support.airflow_standalone import Standalone, start_standalone


@pytest.fixture(scope="session")
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.close()


@pytest.fixture(scope="session")
def airflow_a(tmp_path_factory: pytest.TempPathFactory, recorder: Recorder) -> Iterator[Standalone]:
    home = tmp_path_factory.mktemp("airflow-a")
    standalone = start_standalone(home, HERE / "dags", env=standalone_env(UID_A, recorder.url, home))
    try:
        standalone.wait_dag(DAG_ID)
        yield standalone
    finally:
        standalone.stop()


@pytest.fixture(scope="session")
def finished_run(airflow_a: Standalone, recorder: Recorder) -> dict[str, Any]:
    """The test DAG triggered through the REST API and run to its end; the listener's events all arrived."""
    run_id = airflow_a.trigger(DAG_ID, LOGICAL_DATE, RUN_ID)
    state = airflow_a.wait_run(DAG_ID, run_id)
    airflow_a.wait_for("the listener's runtime events", lambda: runtime_missing(recorder, airflow_a, run_id), 120,
                       ready=lambda got: not got["missing"])
    return {"run_id": run_id, "state": state}


