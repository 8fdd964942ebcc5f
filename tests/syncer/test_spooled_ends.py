"""A deployment whose task processes never finish their end flush in time (as behind a slow tracker or on a loaded
worker) still delivers every event of a run: what a flush cannot send goes to the spool on disk before the
process ends, and the scheduler's long-lived client replays it, claims of dead task processes included.

Its own standalone, with every task's end flush bounded to 1 ms (RUNLINK_AIRFLOW_FLUSH_TIMEOUT), against a recorder.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from syncer_helpers import DAG_ID, HERE, LOGICAL_DATE, UID_A, Recorder, runtime_missing, spool_files, standalone_env

from support.airflow_standalone import Standalone, start_standalone

pytestmark = pytest.mark.airflow

RUN_ID = "syncer_e2e_starved_flush"


@pytest.fixture(scope="module")
def starved(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Standalone, Recorder]]:
    recorder = Recorder()
    home: Path = tmp_path_factory.mktemp("airflow-starved")
    env = {**standalone_env(UID_A, recorder.url, home), "RUNLINK_AIRFLOW_FLUSH_TIMEOUT": "0.001"}
    standalone = start_standalone(home, HERE / "dags", env=env)
    try:
        standalone.wait_dag(DAG_ID)
        yield standalone, recorder
    finally:
        standalone.stop()
        recorder.close()


def test_every_event_arrives_when_every_end_flush_runs_out(starved: tuple[Standalone, Recorder]) -> None:
    airflow, recorder = starved
    run_id = airflow.trigger(DAG_ID, LOGICAL_DATE, RUN_ID)
    airflow.wait_run(DAG_ID, run_id)
    airflow.wait_for("every attempt's end and the run's end, from the spool", lambda: runtime_missing(
        recorder, airflow, run_id), 120, ready=lambda got: not got["missing"])
    # nothing is left behind: no batch still spooled, claimed or quarantined
    airflow.wait_for("an empty spool", lambda: spool_files(airflow), 60, ready=lambda files: not files)
    events = recorder.of_run(DAG_ID, run_id)
    starts = {(e["context"]["task_id"], e["context"]["try_number"]) for e in events
              if e["type"] == "task_attempt.start"}
    assert {("ok", "1"), ("boom", "1"), ("skip_me", "1")} <= starts
    # at least once, not exactly once: a batch in flight when the flush ran out is spooled too, and may also have
    # reached the recorder (a tracker drops the second copy by its event ids)
