"""Browser tests: a real tracker (tests/conftest.py), real Airflow dag.test() runs with real Spark reporting to
it, Debian's chromium driven by Playwright (never `playwright install`). Screenshots go to
test-artifacts/screenshots/ (gitignored)."""

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

from support.browser import CHROMIUM_ARGS, chromium_or_skip

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    chromium = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(15_000)
    pg = context.new_page()
    pg.console_errors = []  # type: ignore[attr-defined]
    pg.on("console", lambda m: pg.console_errors.append(m.text) if m.type == "error" else None)
    yield pg
    context.close()


class AirflowRunner:
    """dag.test() of tests/ui/dags in fresh interpreters (task processes of their own), reporting to `tracker`."""

    def __init__(self, tracker: Any) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="runlink-ui-airflow-"))
        client_home = Path(tempfile.mkdtemp(prefix="runlink-ui-client-"))
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(HERE / "dags"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW_CONN_SPARK_LOCAL": json.dumps({"conn_type": "spark", "host": "local[2]"}),
            "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
            "RUNLINK_TEST_OUT": str(self.home / "out"),
            "RUNLINK_URL": tracker.url,
            "RUNLINK_TOKEN": tracker.token,
            "RUNLINK_HOME": str(client_home),
            "PYTHONPATH": str(ROOT / "python"),
        }
        result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True,
                                timeout=600, env=self.env)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    def run(self, dag_id: str) -> tuple[str, str]:
        result = subprocess.run([sys.executable, str(HERE / "run_dag.py"), dag_id], capture_output=True, text=True,
                                timeout=900, env=self.env)
        values = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith("RUNLINK_"))
        if "RUNLINK_RUN_ID" not in values:
            raise AssertionError(f"dag.test() of {dag_id} failed:\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
        return json.loads(values["RUNLINK_RUN_ID"]), values.get("RUNLINK_STATE", "")


@pytest.fixture(scope="session")
def ui_tracker(tracker_factory: Any) -> Any:
    """The browser tests' own SQLite tracker (the UI itself is backend-neutral; the alert tests cover both)."""
    return tracker_factory(backend="sqlite")


@pytest.fixture(scope="session")
def airflow(ui_tracker: Any) -> AirflowRunner:
    return AirflowRunner(ui_tracker)
