"""The web UI in a real browser (Debian's chromium via Playwright) against a real tracker fed by real
dag.test() runs with real Spark: login, drill-down to a Spark stage, the timeline, an alert rule made in the UI
firing on a failing run into a local webhook receiver, keyboard navigation, labels. Screenshots of the main
pages are kept in test-artifacts/screenshots/."""

from __future__ import annotations

import random
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from playwright.sync_api import expect

from support import seed
from support.browser import login, shot
from support.receivers import WebhookReceiver
from support.waiting import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.airflow, pytest.mark.spark]


def _tree(tracker: Any, dag_id: str, run_id: str) -> dict:
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id, run_id=run_id)
    return tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}") if page["items"] else {}


def _etl_done(tree: dict) -> bool:
    for attempt in tree.get("task_attempts", []):
        if attempt["task_id"] == "transform":
            apps = attempt.get("spark_apps") or []
            return attempt.get("state") == "success" and bool(apps) and all(
                a.get("end_time") and a["stages"] and a["queries"] for a in apps)
    return False


@pytest.fixture(scope="session")
def etl(ui_tracker: Any, airflow: Any) -> dict:
    """A real dag.test() of ui_spark_etl (SparkSubmitOperator + Python task), plus seeded history so the DAG list,
    trend and dataset pages have something to show next to it."""
    from runlink.protocol import make_event

    history: list[dict] = []
    now = datetime.now(timezone.utc).replace(microsecond=0)
    history.append(seed.dag_definition("daily_sales", "prod", seed.task_names(10), next_run=now + timedelta(hours=5)))
    rng = random.Random(7)
    for day in range(14):
        history += seed.dag_run("daily_sales", now - timedelta(days=14 - day), tasks=10, rng=rng,
                                failed={"join_002"} if day == 11 else set(), metrics={"rows_out": 40_000 + day * 900})
        ctx = seed.ctx("daily_sales", f"scheduled__{seed.iso(now - timedelta(days=14 - day))}",
                       now - timedelta(days=14 - day), "prod", "load_004", 1)
        history.append(make_event("dataset", {"operation": "write", "table": "analytics.sales_daily",
                                              "rows": 40_000 + rng.randint(-3000, 3000)}, context=ctx,
                                  time=seed.iso(now - timedelta(days=14 - day) + timedelta(minutes=5))))
    ctx = seed.ctx("daily_sales", f"scheduled__{seed.iso(now - timedelta(days=1))}", now - timedelta(days=1), "prod",
                   "aggregate_003", 1)
    history += seed.spark_app(ctx, "app-sales-aggregate", now - timedelta(days=1) + timedelta(minutes=2), stages=80)
    seed.post(ui_tracker.url, ui_tracker.token, history)
    run_id, state = airflow.run("ui_spark_etl")
    assert state == "success"
    tree = wait_for(lambda: _tree(ui_tracker, "ui_spark_etl", run_id), "the ETL run's tree", 120, ready=_etl_done)
    return {"run_id": run_id, "tree": tree}


def test_login_then_dag_list_to_spark_stage(page: Any, ui_tracker: Any, etl: dict) -> None:
    page.goto(ui_tracker.url + "/ui/dags")
    expect(page).to_have_url(re.compile(r"/ui/login\?next="))
    shot(page, "01-login")
    page.get_by_label("Access token").fill("rl_not-a-token")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Unknown token")
    page.console_errors.clear()  # the 401 of the wrong token above is expected
    page.get_by_label("Access token").fill(ui_tracker.token)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(re.compile(r"/ui/dags$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("DAGs")
    shot(page, "02-dags")

    page.get_by_role("link", name="ui_spark_etl", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("ui_spark_etl")
    expect(page.locator("svg[aria-label^='duration of the last']")).to_be_visible()
    shot(page, "03-dag")
    page.get_by_role("link", name=etl["run_id"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(etl["run_id"])
    expect(page.locator("#tasks tbody tr")).to_have_count(2)
    shot(page, "04-dag-run")
    page.get_by_role("link", name="transform", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("transform")
    expect(page.get_by_role("heading", name="Spark applications")).to_be_visible()
    shot(page, "05-task-attempt")

    (attempt,) = [a for a in etl["tree"]["task_attempts"] if a["task_id"] == "transform"]
    (app,) = attempt["spark_apps"]
    page.get_by_role("link", name=app["name"], exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Spark: " + app["name"])
    view = ui_tracker.get_json(f"/api/v1/views/spark-apps/{app['id']}")
    assert len(view["stages"]) == len(app["stages"]) > 1 and len(view["jobs"]) == len(app["jobs"]) > 1
    expect(page.locator("#timeline rect.stage-bar")).to_have_count(len(app["stages"]))
    expect(page.locator("#timeline rect.job-bar")).to_have_count(len(app["jobs"]))
    expect(page.locator("#timeline rect.stage-bar.slowest")).to_have_count(1)
    expect(page.locator("#stages tbody tr")).to_have_count(len(app["stages"]))
    expect(page.locator("#stages tr.hl")).to_have_count(1)  # the slowest stage, highlighted
    page.locator("#timeline rect.stage-bar.slowest").hover()
    expect(page.locator(".tooltip")).to_be_visible()
    expect(page.locator(".tooltip")).to_contain_text("Stage " + view["analysis"]["slowest_stage"].split(".")[0])
    # sort the stage table by duration (descending first): the slowest stage comes first
    page.locator("#stages thead").get_by_role("button", name="Duration").click()
    expect(page.locator("#stages tbody tr").first).to_have_id("stage-" + view["analysis"]["slowest_stage"]
                                                           .replace(".", "-"))
    expect(page.locator("#q-h")).to_be_visible()
    assert page.locator("table[aria-describedby='q-h'] tbody tr").count() == len(app["queries"])
    shot(page, "06-spark-app")

    stage_id, attempt_id = view["analysis"]["slowest_stage"].split(".")
    page.locator(f"#stage-{stage_id}-{attempt_id}").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(
        f"Stage {stage_id}" + (f" (retry {attempt_id})" if attempt_id != "0" else ""))
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    shot(page, "07-stage")
    assert page.console_errors == []


def test_secrets_masked_on_attempt_page(page: Any, ui_tracker: Any, etl: dict) -> None:
    (check,) = [a for a in etl["tree"]["task_attempts"] if a["task_id"] == "check"]
    login(page, ui_tracker, f"/ui/task-attempts/{check['id']}")
    expect(page.get_by_role("heading", name="Metrics")).to_be_visible()
    expect(page.locator("body")).to_contain_text("rows_checked")
    assert "s3cr3t-value" not in page.content()
    assert ui_tracker.token not in page.content()


def test_other_pages_render(page: Any, ui_tracker: Any, etl: dict) -> None:
    login(page, ui_tracker, "/ui/dags")
    page.get_by_role("link", name="daily_sales", exact=True).click()
    expect(page.locator("table.cellgrid tbody tr")).to_have_count(10)
    shot(page, "08-dag-history")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Datasets").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Datasets")
    shot(page, "09-datasets")
    page.get_by_role("link", name="analytics.sales_daily", exact=True).click()
    expect(page.locator("svg[aria-label^='row counts of']")).to_be_visible()
    expect(page.get_by_role("heading", name="Who reads and writes it")).to_be_visible()
    shot(page, "10-dataset")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Instances").click()
    expect(page.locator("#instances tbody tr")).not_to_have_count(0)
    shot(page, "11-instances")
    page.goto(ui_tracker.url + "/ui/dags?state=failed")
    expect(page.get_by_role("link", name="daily_sales", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="ui_spark_etl", exact=True)).to_have_count(0)
    page.goto(ui_tracker.url + "/ui/dags/no_such_dag")
    expect(page.get_by_role("heading", level=1)).to_have_text("Not found")


def test_alert_rule_made_in_ui_fires_on_failing_run(page: Any, ui_tracker: Any, airflow: Any) -> None:
    receiver = WebhookReceiver()
    try:
        login(page, ui_tracker, "/ui/alerts")
        form = page.locator("form.rule-form")
        form.get_by_label("Name").fill("Partner feed failures")
        form.get_by_label("When").select_option("task_failed")
        expect(form.get_by_label("Metric key")).to_be_hidden()
        form.get_by_label("DAG id or pattern").fill("ui_*")
        form.get_by_label("Webhook URL").fill(receiver.url)
        form.get_by_role("button", name="Create rule").click()
        expect(page.locator("#rules")).to_contain_text("Partner feed failures")
        run_id, state = airflow.run("ui_failing")
        assert state == "failed"
        (payload,) = receiver.wait_for(lambda got: len(got) >= 1, timeout=120)
        assert payload["runlink"]["event"] == "fired"
        assert payload["text"].startswith(":red_circle: [FIRING] Task failed: ui_failing.load_partner_feed")
        assert "partner feed is empty" in payload["runlink"]["message"]
        assert payload["runlink"]["url"].startswith(ui_tracker.url + "/ui/task-attempts/")
        wait_for(lambda: ui_tracker.get_json("/api/v1/alerts", state="open")["items"], "the alert's delivery",
                 ready=lambda items: any(d["status"] == "sent" for a in items for d in a["deliveries"]))
        page.reload()
        row = page.locator("#open-alerts tbody tr", has_text="ui_failing.load_partner_feed")
        expect(row).to_contain_text("webhook fired: sent")
        shot(page, "12-alerts-firing")
        row.get_by_role("link", name="task attempt").click()
        expect(page.locator("section.callout.bad[aria-labelledby=err-h]")).to_contain_text("partner feed is empty")
        shot(page, "13-failed-attempt")
        page.goto(ui_tracker.url + "/ui/alerts")
        firing = page.locator("#open-alerts tbody tr", has_text="ui_failing.load_partner_feed")
        firing.get_by_role("textbox").fill("partner feed refilled")
        firing.get_by_role("button", name=re.compile("^Resolve alert")).click()
        expect(page.locator("#open-alerts")).to_have_count(0)
        expect(page.get_by_role("heading", name="Recently resolved")).to_be_visible()
        expect(page.locator("body")).to_contain_text("partner feed refilled")
        assert run_id
    finally:
        receiver.close()


def test_keyboard_navigation(page: Any, ui_tracker: Any, etl: dict) -> None:
    login(page, ui_tracker, "/ui/dags")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "Skip to content"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
    page.goto(ui_tracker.url + "/ui/dags")
    seen = []
    for _ in range(10):
        page.keyboard.press("Tab")
        seen.append(page.evaluate("document.activeElement.textContent.trim()"))
    assert seen[:8] == ["Skip to content", "runlink", "DAGs", "Instances", "Spark apps", "Datasets", "Lineage",
                        "Alerts"], seen
    page.keyboard.press("Shift+Tab") if seen[8] != "Alerts" else None
    while page.evaluate("document.activeElement.textContent.trim()") != "Alerts":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/alerts$"))
    # from the DAG list, Tab reaches a DAG link and Enter follows it
    page.goto(ui_tracker.url + "/ui/dags")
    deadline = time.monotonic() + 20
    while page.evaluate("document.activeElement.textContent.trim()") != "ui_spark_etl":
        assert time.monotonic() < deadline, "Tab never reached the ui_spark_etl link"
        page.keyboard.press("Tab")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/ui/dags/ui_spark_etl"))
    # a sortable header is a button: Enter sorts
    page.locator("#runs thead").get_by_role("button", name="Duration").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#runs thead th[aria-sort]")).to_have_count(1)


A11Y_JS = r"""
() => {
  const problems = [];
  const byIds = (el) => (el.getAttribute('aria-labelledby') || '').split(/\s+/).map((id) => document.getElementById(id))
      .filter(Boolean).map((e) => e.textContent.trim()).join(' ').trim();
  const named = (el) => (el.getAttribute('aria-label') || '').trim() || byIds(el);
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const forLabel = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    const wrap = el.closest('label');
    if (!(named(el) || (forLabel && forLabel.textContent.trim()) || (wrap && wrap.textContent.trim())))
      problems.push('unlabelled control ' + el.outerHTML.slice(0, 100));
  }
  for (const el of document.querySelectorAll('button'))
    if (!(el.textContent.trim() || named(el))) problems.push('button without a name ' + el.outerHTML.slice(0, 80));
  for (const el of document.querySelectorAll('a[href]'))
    if (!(el.textContent.trim() || named(el) || el.getAttribute('title')))
      problems.push('link without a name ' + el.outerHTML.slice(0, 100));
  for (const el of document.querySelectorAll('svg[role=img]')) if (!named(el)) problems.push('unnamed svg image');
  if (document.querySelectorAll('h1').length !== 1) problems.push('h1 count ' + document.querySelectorAll('h1').length);
  let last = 0;
  for (const h of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const level = +h.tagName[1];
    if (level > last + 1) problems.push('heading level jumps to ' + h.tagName + ': ' + h.textContent.slice(0, 40));
    last = level;
  }
  if (!document.documentElement.lang) problems.push('html has no lang');
  if (document.querySelectorAll('main').length !== 1) problems.push('main landmark count');
  if (!document.querySelector('a[href="#main"]')) problems.push('no skip link');
  const ids = new Set();
  for (const el of document.querySelectorAll('[id]')) {
    if (ids.has(el.id)) problems.push('duplicate id ' + el.id);
    ids.add(el.id);
  }
  for (const t of document.querySelectorAll('table'))
    if (!t.querySelector('th')) problems.push('table without headers');
  return problems;
}
"""


def test_labels_and_structure_on_main_pages(page: Any, ui_tracker: Any, etl: dict) -> None:
    (attempt,) = [a for a in etl["tree"]["task_attempts"] if a["task_id"] == "transform"]
    app = attempt["spark_apps"][0]
    run_pk = etl["tree"]["id"]
    datasets = ui_tracker.get_json("/api/v1/views/datasets")["items"]
    paths = ["/ui/dags", "/ui/dags/ui_spark_etl", f"/ui/dag-runs/{run_pk}", f"/ui/task-attempts/{attempt['id']}",
             f"/ui/spark-apps/{app['id']}", f"/ui/spark-apps/{app['id']}/stages/0/0", "/ui/datasets",
             f"/ui/datasets/{datasets[0]['id']}", "/ui/instances", "/ui/alerts"]
    login(page, ui_tracker, "/ui/dags")
    for path in paths:
        response = page.goto(ui_tracker.url + path)
        assert response.status == 200, path
        assert page.evaluate(A11Y_JS) == [], path
    page.context.clear_cookies()
    page.goto(ui_tracker.url + "/ui/login")
    assert page.evaluate(A11Y_JS) == []
    assert page.console_errors == []
