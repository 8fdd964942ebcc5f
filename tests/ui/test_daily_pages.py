"""The pages a daily user leans on, in Debian's chromium against a real tracker fed with protocol events: the lineage
graph (a three-task chain across two DAGs, depth and direction), the task grid by keyboard, /docs with the network
unreachable, the Spark application list and search, an instance page, the run page's previous/next links and
alerts, an attempt's parameters and source, one-run charts, the timeline at 800 px, a malformed stage URL, a
read-only user, resolving with a note. Screenshots in test-artifacts/screenshots/ (gitignored)."""

from __future__ import annotations

import random
import re
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests
from playwright.sync_api import expect

from runlink.protocol import make_event
from support import seed
from support.browser import shot
from support.ui_pages import ui_page
from support.waiting import wait_for

pytestmark = [pytest.mark.browser]

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SPARK_SUBMIT = "airflow.providers.apache.spark.operators.spark_submit.SparkSubmitOperator"


def _dataset(ctx: dict[str, Any], operation: str, table: str, rows: int, when: datetime) -> dict[str, Any]:
    return make_event("dataset", {"operation": operation, "table": table, "rows": rows}, context=ctx,
                      time=seed.iso(when))


def _history() -> list[dict[str, Any]]:
    """ingest_events (extract -> raw.events -> transform -> stage.clean) and reporting (stage.clean -> report ->
    mart.report); `grid_dag` with three runs for the grid; `one_run` with a single run; a Spark app."""
    rng = random.Random(3)
    events: list[dict[str, Any]] = [seed.dag_definition("ingest_events", "prod", ["extract", "transform"]),
                                    seed.dag_definition("reporting", "prod", ["report"])]
    day = NOW - timedelta(days=1)
    ingest = seed.ctx("ingest_events", "manual_1", day, "prod")
    report = seed.ctx("reporting", "manual_1", day, "prod")
    for base, task, start in ((ingest, "extract", 1), (ingest, "transform", 5), (report, "report", 20)):
        c = {**base, "task_id": task, "try_number": "1"}
        events.append(make_event("task_attempt.start", {"state": "running", "start_date": seed.iso(day + timedelta(
            minutes=start))}, context=c, agent="airflow", time=seed.iso(day + timedelta(minutes=start))))
        events.append(make_event("task_attempt.end", {"state": "success", "end_date": seed.iso(day + timedelta(
            minutes=start + 2))}, context=c, agent="airflow", time=seed.iso(day + timedelta(minutes=start + 2))))
    t = day + timedelta(minutes=3)
    extract, transform, rep = ({**ingest, "task_id": "extract", "try_number": "1"},
                               {**ingest, "task_id": "transform", "try_number": "1"},
                               {**report, "task_id": "report", "try_number": "1"})
    events += [_dataset(extract, "write", "raw.events", 1000, t), _dataset(transform, "read", "raw.events", 1000, t),
               _dataset(transform, "write", "stage.clean", 900, t), _dataset(rep, "read", "stage.clean", 900, t),
               _dataset(rep, "write", "mart.report", 12, t)]
    for n in range(3):
        events += seed.dag_run("grid_dag", NOW - timedelta(days=3 - n), tasks=4, rng=rng,
                               failed={"clean_001"} if n == 2 else set())
    events += seed.dag_run("one_run", NOW - timedelta(hours=5), tasks=2, rng=rng)
    spark_ctx = seed.ctx("grid_dag", f"scheduled__{seed.iso(NOW - timedelta(days=1))}", NOW - timedelta(days=1),
                         "prod", "extract_000", 1)
    events.append(make_event("task_attempt.start", {
        "state": "running", "operator": SPARK_SUBMIT,
        "params": {"master": "'local[2]'", "application": "/opt/jobs/etl_job.py", "retries": 2},
        "source_code": "class SparkSubmitOperator(BaseOperator):\n    template_fields = ()\n"},
        context=spark_ctx, agent="airflow", time=seed.iso(NOW - timedelta(days=1) + timedelta(minutes=30))))
    events += seed.spark_app(spark_ctx, "app-20261203-0042", NOW - timedelta(days=1, minutes=-2), stages=24)
    return events


@pytest.fixture(scope="module")
def site(tracker_factory: Any) -> Any:
    tracker = tracker_factory(backend="sqlite")
    seed.post(tracker.url, tracker.token, _history())
    return tracker


def _login(page: Any, tracker: Any, path: str, token: str | None = None) -> None:
    page.goto(tracker.url + "/ui/login?" + urlencode({"next": path}))
    page.get_by_label("Access token").fill(token or tracker.token)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(re.escape(path.split("?")[0])))


def test_lineage_graph_draws_a_three_task_chain_across_two_dags(page: Any, site: Any) -> None:
    [raw] = site.get_json("/api/v1/views/datasets", q="raw.events")["items"]
    _login(page, site, f"/ui/lineage?dataset={raw['id']}&depth=6&direction=both")
    graph = page.locator("#lineage-graph")
    expect(graph).to_have_attribute("data-rendered", "6")
    tasks = graph.locator("a.node.task")
    expect(tasks).to_have_count(3)
    expect(graph.locator("a.node.dataset")).to_have_count(3)
    expect(graph.locator("path.edge")).to_have_count(5)
    expect(graph.locator("a.node.task text.dag", has_text="reporting")).to_have_count(1)
    x = {name: page.locator("a.node.task", has_text=name).locator("rect").bounding_box()["x"]
         for name in ("extract", "transform", "report")}
    assert x["extract"] < x["transform"] < x["report"], x  # left to right, writers before readers
    expect(graph.locator("a.node.dataset.focus")).to_contain_text("raw.events")
    expect(page.get_by_label("Depth (steps)")).to_have_value("6")
    expect(page.get_by_label("Direction")).to_have_value("both")
    page.get_by_label("Direction").select_option("downstream")  # from raw.events: its writer drops out
    page.get_by_role("button", name="Show").click()
    expect(graph).to_have_attribute("data-rendered", "5")
    expect(graph.locator("a.node.task", has_text="extract")).to_have_count(0)
    shot(page, "20-lineage-graph")

    # one step upstream from mart.report: its writer only; the controls change depth and direction
    [mart] = site.get_json("/api/v1/views/datasets", q="mart.report")["items"]
    page.goto(site.url + f"/ui/lineage?dataset={mart['id']}")
    page.get_by_label("Depth (steps)").select_option("1")
    page.get_by_label("Direction").select_option("upstream")
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#lineage-graph")).to_have_attribute("data-rendered", "2")
    expect(page.locator("#lineage-graph a.node.task")).to_have_text(re.compile("report"))
    page.locator("#lineage-graph a.node.task").click()
    expect(page).to_have_url(re.compile("/ui/task-attempts/"))


def test_task_grid_is_reachable_and_walkable_by_keyboard(page: Any, site: Any) -> None:
    _login(page, site, "/ui/dags/grid_dag")
    grid = page.locator("#task-grid")
    cells = grid.locator("tbody a.cell")
    expect(cells).to_have_count(12)
    expect(grid.locator("tbody a.cell[tabindex='0']")).to_have_count(1)  # one Tab stop for the whole grid
    grid.locator("thead a").last.focus()
    page.keyboard.press("Tab")
    focused = page.evaluate_handle("document.activeElement")
    assert focused.get_attribute("class").startswith("cell"), focused.get_attribute("class")
    first = focused.get_attribute("href")
    page.keyboard.press("ArrowRight")
    second = page.evaluate("document.activeElement.getAttribute('href')")
    assert second != first and second.startswith("/ui/task-attempts/")
    page.keyboard.press("ArrowDown")
    third = page.evaluate("document.activeElement.getAttribute('href')")
    assert third not in (first, second)
    expect(grid.locator("tbody a.cell[tabindex='0']")).to_have_count(1)
    shot(page, "21-task-grid-keyboard")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(third) + "$"))


def test_docs_render_with_the_network_unreachable(page: Any, site: Any) -> None:
    blocked: list[str] = []

    def only_local(route: Any) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort("internetdisconnected")

    page.context.route("**/*", only_local)
    page.goto(site.url + "/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("runlink tracker")
    expect(page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert page.locator(".swagger-ui .opblock").count() > 20
    assert blocked == [], blocked
    shot(page, "22-api-docs-offline")


def test_spark_apps_list_searches_by_id_and_links_to_the_app(page: Any, site: Any) -> None:
    _login(page, site, "/ui/spark-apps")
    expect(page.locator("#spark-apps tbody tr")).to_have_count(1)
    page.get_by_label("Application id or name").fill("0042")
    page.get_by_role("button", name="Search").click()
    row = page.locator("#spark-apps tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("app-20261203-0042")
    expect(row).to_contain_text("grid_dag · extract_000")
    shot(page, "23-spark-apps")
    page.get_by_label("Application id or name").fill("no-such-app")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#spark-apps")).to_have_count(0)
    page.get_by_label("Application id or name").fill("")
    page.get_by_label("State").select_option("ended")
    page.get_by_role("button", name="Search").click()
    page.locator("#spark-apps tbody tr a").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("extract_000-spark")


def test_instance_page_and_its_dag_count(page: Any, site: Any) -> None:
    _login(page, site, "/ui/instances")
    row = page.locator("#instances tbody tr", has_text="prod")
    dags_listed = len({d["dag_id"] for d in site.get_json("/api/v1/views/dags", instance="prod")["items"]})
    expect(row.locator("td").nth(4)).to_have_text(str(dags_listed))
    row.get_by_role("link", name="prod").first.click()
    expect(page).to_have_url(re.compile("/ui/instances/prod$"))
    expect(page.locator("#instance-facts")).to_contain_text("prod")
    expect(page.locator("#instance-dags tbody tr")).to_have_count(dags_listed)
    expect(page.locator("#instance-runs tbody tr").first).to_be_visible()
    shot(page, "24-instance")
    page.goto(site.url + "/ui/instances/no-such-instance")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_run_page_previous_next_and_its_alerts(page: Any, site: Any) -> None:
    rule = requests.post(site.url + "/api/v1/alert-rules", json={"name": "grid failures", "kind": "task_failed",
                                                                  "dag_id": "grid_dag"},
                         headers=site.headers(), timeout=30)
    assert rule.status_code == 201, rule.text
    wait_for(lambda: requests.post(site.url + "/api/v1/alerts/evaluate", headers=site.headers(), timeout=60).ok
             and site.get_json("/api/v1/alerts", state="open")["items"], "the grid_dag alert", 60)
    failed_run = next(r for r in site.get_json("/api/v1/dag-runs", dag_id="grid_dag")["items"]
                      if r["state"] == "failed")
    _login(page, site, f"/ui/dag-runs/{failed_run['id']}")
    alerts = page.locator("#alerts")
    expect(alerts).to_contain_text("clean_001")
    shot(page, "25-run-with-alert")
    expect(page.locator("#next-run")).to_have_count(0)  # the latest run
    page.locator("#prev-run").click()
    page.locator("#prev-run").click()
    expect(page.locator("#prev-run")).to_have_count(0)  # the first run
    page.locator("#next-run").click()
    page.locator("#next-run").click()
    expect(page).to_have_url(re.compile(f"/ui/dag-runs/{failed_run['id']}$"))
    # the DAG page links its alert to the alerts page, where resolving takes a note
    page.goto(site.url + "/ui/dags/grid_dag")
    page.locator("#alerts a").first.click()
    expect(page).to_have_url(re.compile(r"/ui/alerts#alert-"))
    row = page.locator("#open-alerts tbody tr", has_text="clean_001")
    row.get_by_role("textbox").fill("upstream file re-sent")
    row.get_by_role("button", name=re.compile("^Resolve alert")).click()
    expect(page.locator("body")).to_contain_text("upstream file re-sent")


def test_attempt_page_params_source_and_stage_fixes(page: Any, site: Any) -> None:
    trees = [site.get_json(f"/api/v1/dag-runs/{r['id']}")
             for r in site.get_json("/api/v1/dag-runs", dag_id="grid_dag")["items"]]
    attempt = next(a for tree in trees for a in tree["task_attempts"] if a["spark_apps"])
    _login(page, site, f"/ui/task-attempts/{attempt['id']}")
    params = page.locator("#params")
    expect(params.locator("tr", has_text="master")).to_contain_text("local[2]")
    expect(params).not_to_contain_text("\\u0027")
    expect(params).not_to_contain_text("'local[2]'")
    expect(page.locator("#application")).to_contain_text("/opt/jobs/etl_job.py")
    expect(page.get_by_text("class SparkSubmitOperator")).to_have_count(0)
    shot(page, "26-attempt")
    app_pk = attempt["spark_apps"][0]["id"]
    page.goto(site.url + f"/ui/spark-apps/{app_pk}/stages/3/0")
    expect(page.get_by_role("heading", level=1)).to_contain_text(re.compile(r"Stage 3(?![.\d])"))
    expect(page.locator("table tr", has_text="Executor CPU time")).to_have_count(1)
    expect(page.get_by_text("executor_cpu_time_ns", exact=True)).to_have_count(0)
    response = page.goto(site.url + f"/ui/spark-apps/{app_pk}/stages/two/0")
    assert response.status == 404 and "text/html" in response.headers["content-type"]
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")

    # at 800 px the timeline keeps its labels readable (it scrolls instead of shrinking)
    page.set_viewport_size({"width": 800, "height": 900})
    page.goto(site.url + f"/ui/spark-apps/{app_pk}")
    label = page.locator("#timeline .lane-label").first.bounding_box()
    assert label["height"] >= 10, label
    shot(page, "27-spark-app-800px")


def test_one_run_chart_and_a_read_only_user(page: Any, site: Any) -> None:
    read_token = site.make_token("read")
    _login(page, site, "/ui/dags/one_run", token=read_token)
    bars = page.locator("svg.chart rect")
    expect(bars).to_have_count(1)
    assert float(bars.first.get_attribute("width")) <= 48
    labels = page.locator("svg.chart text").all_text_contents()
    assert len([t for t in labels if t.startswith("scheduled__")]) == 1, labels
    expect(page.get_by_role("link", name="Alert on this DAG…")).to_have_count(0)
    shot(page, "28-one-run-read-only")


def test_dataset_list_counts_the_reads_on_every_page(site: Any) -> None:
    """Reads and writes per dataset (the chain's tables, the Spark app's input path), page by page through the
    keyset cursor (counts are computed for a page's rows only), and the same numbers in the HTML list."""
    counted: dict[str, tuple[int, int]] = {}
    cursor = None
    while True:
        listed = site.get_json("/api/v1/views/datasets", limit=2, **({"cursor": cursor} if cursor else {}))
        counted.update({d["identity"]: (d["reads"], d["writes"]) for d in listed["items"]})
        cursor = listed.get("next")
        if not cursor:
            break
    assert counted == {"table:raw.events": (1, 1), "table:stage.clean": (1, 1), "table:mart.report": (0, 1),
                       "path:s3://lake/raw/events": (1, 0), "table:analytics.daily_events": (0, 1)}
    rows = re.findall(r"<tr>.*?</tr>", ui_page(site, "/ui/datasets"), re.S)
    cells = {re.sub(r"<[^>]+>", " ", r).split()[0]: re.findall(r'<td class="n" data-v="(\d+)"', r) for r in rows}
    assert cells["raw.events"] == ["1", "1"] and cells["s3://lake/raw/events"] == ["1", "0"], cells
