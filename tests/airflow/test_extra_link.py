"""Links both ways (issue 16) on a real `airflow standalone` with runlink's plugin and a real tracker:

- Airflow -> runlink: the task instance's "runlink" extra link, as Airflow's REST API gives it (the API server
  calls the plugin's link), and as the Airflow UI shows it: Playwright with Debian's chromium opens the task
  instance page, follows the link, logs in to runlink and lands on that attempt's page (the tracker's
  `/ui/attempt` route resolves the attempt by its Airflow context).
- runlink -> Airflow: the attempt page links to the task's log and the run's grid in the registered instance.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from support.airflow_standalone import Standalone, start_standalone
from support.browser import CHROMIUM_ARGS, chromium_or_skip, shot
from support.cli import runlink_cli
from support.waiting import wait_for

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

pytestmark = pytest.mark.airflow

DAG_ID = "link_both_ways"
RUN_ID = "link_run_1"
TASK_ID = "compute"


@pytest.fixture(scope="module")
def linked(tracker_factory: Any, tmp_path_factory: pytest.TempPathFactory,
           server_python: str | None) -> Iterator[tuple[Standalone, Any, str]]:
    """A tracker, an Airflow whose plugin reports to it, one finished DAG run, the instance registered."""
    tracker = tracker_factory(backend="sqlite", python=server_python)
    home = tmp_path_factory.mktemp("airflow-link")
    env = {"RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": tracker.make_token("ingest"),
           "RUNLINK_HOME": str(home / "runlink-client"), "RUNLINK_FLUSH_TIMEOUT": "30",
           "PYTHONPATH": str(ROOT / "python"),
           "AIRFLOW__WORKERS__EXECUTION_API_TIMEOUT": "60"}  # a loaded 2-core machine: the default 5 s is too short
    # its own metadata DB (tests/airflow/conftest.py points this process's Airflow at another one)
    airflow = start_standalone(home, HERE / "link_dags", env=env, sql_alchemy_conn=f"sqlite:///{home / 'airflow.db'}")
    try:
        airflow.wait_dag(DAG_ID)
        # Airflow 3 runs without a logical date; 2.11's API requires one
        logical_date = None if airflow.api_version == "v2" else "2026-11-21T00:00:00+00:00"
        run_id = airflow.trigger(DAG_ID, logical_date, RUN_ID)
        assert airflow.wait_run(DAG_ID, run_id, 300.0) == "success", airflow.log()[-3000:]
        runlink_cli(tracker, "airflow", "add", "prod", "--url", airflow.url, "--username", airflow.username,
                    "--password-env", "LINK_AIRFLOW_PASSWORD", env={"LINK_AIRFLOW_PASSWORD": airflow.password})
        yield airflow, tracker, run_id
    finally:
        airflow.stop()


def _attempt_pk(tracker: Any, run_id: str) -> str:
    def found() -> str | None:
        page = tracker.get_json("/api/v1/dag-runs", dag_id=DAG_ID, run_id=run_id)
        if not page["items"]:
            return None
        tree = tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")
        return next((a["id"] for a in tree["task_attempts"] if a["task_id"] == TASK_ID and a.get("try_number") == 1),
                    None)

    return wait_for(found, "the attempt in the tracker", 120.0, interval_s=0.5)


def _extra_link(airflow: Standalone, run_id: str) -> str:
    path = f"/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{TASK_ID}/links"
    links = airflow.api("GET", path)
    links = links.get("extra_links", links)  # v2 wraps them; v1 answers the mapping itself
    return links["runlink"]


def test_rest_extra_link_and_tracker_redirect(linked: tuple[Standalone, Any, str]) -> None:
    airflow, tracker, run_id = linked
    pk = _attempt_pk(tracker, run_id)
    url = _extra_link(airflow, run_id)
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == tracker.url and parts.path == "/ui/attempt"
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert query["dag_id"] == DAG_ID and query["dag_run_id"] == run_id and query["task_id"] == TASK_ID
    assert query["try_number"] == "1" and query["map_index"] == "-1" and query["uid"]
    assert "token" not in url.lower()

    session = requests.Session()  # a logged-in UI session: the login form's CSRF value, then the token
    form = session.get(tracker.url + "/ui/login", timeout=30)
    csrf = form.text.split('name="csrf" value="', 1)[1].split('"', 1)[0]
    response = session.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf, "next": "/ui/dags"},
                            allow_redirects=False, timeout=30)
    assert response.status_code == 303, response.text[:500]
    redirect = session.get(url, allow_redirects=False, timeout=30)
    assert redirect.status_code == 303 and redirect.headers["location"] == f"/ui/task-attempts/{pk}"
    missing = session.get(url.replace(f"task_id={TASK_ID}", "task_id=nope"), allow_redirects=False, timeout=30)
    assert missing.status_code == 404

    page = session.get(tracker.url + redirect.headers["location"], timeout=30)
    assert page.status_code == 200
    if airflow.api_version == "v1":  # `runlink airflow add` detected 2.x: its grid, with the task's log tab
        log_link = html.escape(f'href="{airflow.url}/dags/{DAG_ID}/grid?' + urlencode(
            {"dag_run_id": run_id, "task_id": TASK_ID, "tab": "logs"}) + '"', quote=False)
        grid_link = html.escape(f'href="{airflow.url}/dags/{DAG_ID}/grid?' + urlencode({"dag_run_id": run_id}) + '"',
                                quote=False)
    else:
        log_link = f'href="{airflow.url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK_ID}?try_number=1"'
        grid_link = f'href="{airflow.url}/dags/{DAG_ID}/runs/{run_id}"'
    assert log_link in page.text and grid_link in page.text  # runlink -> Airflow: the task log and the grid


def test_browser_airflow_ui_link_opens_the_attempt(linked: tuple[Standalone, Any, str]) -> None:
    chromium = chromium_or_skip()
    airflow = linked[0]
    if airflow.api_version != "v2":
        pytest.skip("the browser test drives Airflow 3's UI; on 2.11 the REST extra-link test covers the link")
    from playwright.sync_api import sync_playwright

    airflow, tracker, run_id = linked
    if airflow.api_version == "v1":
        pytest.skip("the browser leg drives the Airflow 3 React UI; on 2.11 the REST leg checks the link")
    pk = _attempt_pk(tracker, run_id)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            context.set_default_timeout(60_000)
            # the Airflow 3 UI keeps its JWT in the `_token` cookie (what its own login page sets)
            context.add_cookies([{"name": "_token", "value": airflow.token(), "url": airflow.url}])
            page = context.new_page()
            # the task instance's Details tab lists its extra links
            page.goto(f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK_ID}/details")
            link = page.get_by_role("link", name="runlink", exact=True)
            try:
                link.wait_for()
            except Exception:
                shot(page, "extra-link-airflow-ti-missing")
                raise
            shot(page, "extra-link-airflow-ti")
            href = link.get_attribute("href")
            assert href and href.startswith(tracker.url + "/ui/attempt?"), href
            with context.expect_page() if link.get_attribute("target") == "_blank" else _same(page) as opened:
                link.click()
            target = opened.value if hasattr(opened, "value") else page
            target.wait_for_url("**/ui/login**")
            target.get_by_label("Access token").fill(tracker.token)
            target.get_by_role("button", name="Log in").click()
            target.wait_for_url(f"**/ui/task-attempts/{pk}")
            assert target.locator("h1").inner_text().startswith(TASK_ID)
            assert target.locator("#airflow-links a", has_text="task log").get_attribute("href") == (
                f"{airflow.url}/dags/{DAG_ID}/runs/{run_id}/tasks/{TASK_ID}?try_number=1")
            shot(target, "extra-link-attempt")
        finally:
            browser.close()


class _same:
    """`with` stand-in for a link that opens in the same tab."""

    def __init__(self, page: Any) -> None:
        self.value = page

    def __enter__(self) -> _same:
        return self

    def __exit__(self, *exc: Any) -> None:
        return None


def test_spark_app_links_only_http() -> None:
    """Spark UI and History Server links of an app: from its `ui_url` and the History Server its conf names
    (Spark documents `spark.yarn.historyServer.address` as host:port); anything but http(s) stays text."""
    pytest.importorskip("orjson", reason="the tracker's extra (runlink[server]) is not in this venv (Airflow 2.11 leg)")
    from runlink.tracker.ui.queries import spark_ui_links

    app = {"app_id": "application_1_0001", "attempt_id": "1", "ui_url": "http://driver:4040",
           "conf": {"spark.yarn.historyServer.address": "history.example:18080"}}
    assert spark_ui_links(app) == {"spark_ui_url": "http://driver:4040",
                                   "history_url": "http://history.example:18080/history/application_1_0001/1/"}
    app = {"app_id": "local-1", "ui_url": "javascript:alert(1)",
           "conf": {"spark.runlink.historyServerUrl": "https://shs.example/spark/"}}
    assert spark_ui_links(app) == {"spark_ui_url": None, "history_url": "https://shs.example/spark/history/local-1/"}
    for hostile in ("javascript:alert(1)", 'h"><script>', "file:///etc/passwd", "data:text/html,x"):
        links = spark_ui_links({"app_id": "a", "ui_url": hostile, "conf": {"spark.runlink.historyServerUrl": hostile}})
        assert links == {"spark_ui_url": None, "history_url": None}, hostile
