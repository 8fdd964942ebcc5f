"""Airflow test set-up: a private AIRFLOW_HOME (set before Airflow is imported), a migrated SQLite metadata DB,
the test DAGs folder, and a real tracker the task processes report to.

On Airflow 2.11 (scripts/test-airflow2.sh) the tracker cannot be installed next to Airflow (SQLAlchemy 1.4
vs 2.x): RUNLINK_SERVER_PYTHON names the interpreter of the main .venv, which runs `runlink server`.
The functions the tests share (run a DAG, wait for its tree in the tracker) are in airflow_runs.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
_HOME = Path(tempfile.mkdtemp(prefix="runlink-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(HERE / "dags")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW_CONN_SPARK_LOCAL"] = json.dumps({"conn_type": "spark", "host": "local[2]"})
os.environ["PATH"] = str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("RUNLINK_TEST_OUT", str(_HOME / "out"))
#: a user conf dir of our own (generous JVM delivery bounds for a loaded machine; see the file)
SPARK_CONF = HERE / "spark-conf"
os.environ["SPARK_CONF_DIR"] = str(SPARK_CONF)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """`airflow db migrate` once per session (a subprocess: it is what an operator would run)."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return _HOME


@pytest.fixture(scope="session")
def server_python() -> str | None:
    """The interpreter that runs `runlink server` when this one cannot (RUNLINK_SERVER_PYTHON), else None."""
    return os.environ.get("RUNLINK_SERVER_PYTHON") or None


@pytest.fixture(scope="session")
def airflow_tracker(tracker_factory: Any, airflow_db: Path, server_python: str | None) -> Iterator[Any]:
    """A SQLite tracker for the Airflow tests; this process and its children report to it."""
    tracker = tracker_factory(backend="sqlite", python=server_python)
    saved = {k: os.environ.get(k) for k in ("RUNLINK_URL", "RUNLINK_TOKEN", "RUNLINK_HOME")}
    os.environ["RUNLINK_URL"] = tracker.url
    os.environ["RUNLINK_TOKEN"] = tracker.token
    client_home = Path(tempfile.mkdtemp(prefix="runlink-client-home-"))
    os.environ["RUNLINK_HOME"] = str(client_home)
    from runlink import delivery

    delivery.set_client(None)
    yield tracker
    delivery.set_client(None)
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
