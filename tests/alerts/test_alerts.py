"""Alert rules over the API against a real tracker (SQLite and PostgreSQL): firing on ingest, de-duplication,
auto and manual resolve, webhook delivery (Slack-compatible JSON) with retries, e-mail over SMTP, missing runs."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
import requests

from runlink.protocol import make_event
from support import seed
from support.receivers import SMTPReceiver, WebhookReceiver
from support.waiting import wait_for

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def make_rule(tracker: Any, **body: Any) -> dict[str, Any]:
    response = requests.post(tracker.url + "/api/v1/alert-rules", json=body, headers=tracker.headers(), timeout=30)
    assert response.status_code == 201, response.text
    return response.json()


def alerts_of(tracker: Any, rule_id: str, state: str | None = None) -> list[dict[str, Any]]:
    params = {"rule_id": rule_id}
    if state:
        params["state"] = state
    return tracker.get_json("/api/v1/alerts", **params)["items"]


def wait_alerts(tracker: Any, rule_id: str, ready: Callable[[list[dict[str, Any]]], bool],
                state: str | None = None) -> list[dict[str, Any]]:
    """The rule's alerts once `ready(items)` holds (the engine evaluates after ingest has answered)."""
    return wait_for(lambda: alerts_of(tracker, rule_id, state), f"alerts of rule {rule_id}", ready=ready)


def post(tracker: Any, events: list[dict[str, Any]]) -> None:
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text


def run(dag_id: str, day: int, **kwargs: Any) -> list[dict[str, Any]]:
    return seed.dag_run(dag_id, NOW + timedelta(days=day), rng=random.Random(day), **kwargs)


def test_task_failed_fires_dedupes_and_resolves(tracker: Any, webhook: WebhookReceiver, unique: str) -> None:
    dag_id = f"fail_{unique}"
    rule = make_rule(tracker, name="ETL failures", kind="task_failed", dag_id=dag_id, webhook_url=webhook.url)
    post(tracker, run(dag_id, 0, tasks=3, failed={"clean_001"}))
    (fired,) = webhook.wait_for(lambda got: len(got) >= 1)
    assert fired["text"].startswith(":red_circle: [FIRING] Task failed:")
    assert fired["blocks"][0]["type"] == "section"
    assert fired["runlink"]["event"] == "fired" and dag_id in fired["runlink"]["subject"]
    assert "input file is empty" in fired["runlink"]["message"]
    (alert,) = wait_alerts(tracker, rule["id"], lambda items: items and items[0]["deliveries"]
                           and items[0]["deliveries"][0]["status"] == "sent")
    assert alert["state"] == "open" and alert["links"]["task_id"] == "clean_001"

    # the same task fails again in the next run: still one open alert (refreshed, not re-sent)
    post(tracker, run(dag_id, 1, tasks=3, failed={"clean_001"}))
    wait_alerts(tracker, rule["id"], lambda items: items[0]["last_seen_at"] > alert["last_seen_at"])
    assert len(alerts_of(tracker, rule["id"], "open")) == 1
    # the next run succeeds: auto-resolved, and the webhook hears it
    post(tracker, run(dag_id, 2, tasks=3))
    got = webhook.wait_for(lambda items: any(i["runlink"]["event"] == "resolved" for i in items))
    assert [g["runlink"]["event"] for g in got] == ["fired", "resolved"]
    (resolved,) = alerts_of(tracker, rule["id"])
    assert resolved["state"] == "resolved" and resolved["resolved_by"] == "auto"
    assert "succeeded" in resolved["resolution"]


def test_manual_resolve_stays_until_a_new_failure(tracker: Any, unique: str) -> None:
    dag_id = f"manual_{unique}"
    rule = make_rule(tracker, name="manual", kind="task_failed", dag_id=dag_id)
    post(tracker, run(dag_id, 0, tasks=2, failed={"extract_000"}))
    (alert,) = wait_alerts(tracker, rule["id"], lambda items: len(items) == 1, "open")
    response = requests.post(f"{tracker.url}/api/v1/alerts/{alert['id']}/resolve", json={"note": "known issue"},
                             headers=tracker.headers(), timeout=30)
    assert response.status_code == 200 and response.json()["state"] == "resolved"
    # re-evaluating the same failed attempt does not reopen it
    assert requests.post(tracker.url + "/api/v1/alerts/evaluate", headers=tracker.headers(), timeout=60).ok
    assert alerts_of(tracker, rule["id"], "open") == []
    # a new failure (another run) opens a new alert
    post(tracker, run(dag_id, 1, tasks=2, failed={"extract_000"}))
    wait_alerts(tracker, rule["id"], lambda items: len(items) == 1, "open")
    assert len(alerts_of(tracker, rule["id"])) == 2


def test_duration_above_history(tracker: Any, unique: str) -> None:
    dag_id = f"slow_{unique}"
    rule = make_rule(tracker, name="slow load", kind="duration", dag_id=dag_id, task_id="extract_000",
                     params={"k": 2, "n": 5, "min_history": 3})
    for day in range(4):
        post(tracker, run(dag_id, day, tasks=1, task_seconds=10))
    post(tracker, run(dag_id, 4, tasks=1, task_seconds=100))
    (alert,) = wait_alerts(tracker, rule["id"], lambda items: len(items) == 1, "open")
    assert alert["value"] > alert["bound"] and alert["bound"] < 40
    assert "median" in alert["message"]
    post(tracker, run(dag_id, 5, tasks=1, task_seconds=10))
    wait_alerts(tracker, rule["id"], lambda items: items[0]["state"] == "resolved")


def test_dag_run_duration_fixed_bound(tracker: Any, unique: str) -> None:
    dag_id = f"dagslow_{unique}"
    rule = make_rule(tracker, name="whole run", kind="duration", dag_id=dag_id, params={"max_s": 30})
    post(tracker, run(dag_id, 0, tasks=8, task_seconds=20))
    (alert,) = wait_alerts(tracker, rule["id"], lambda items: len(items) == 1, "open")
    assert alert["subject"].startswith("dag|") and alert["bound"] == 30


def test_metric_change_and_dataset_rows(tracker: Any, unique: str) -> None:
    dag_id = f"metric_{unique}"
    metric_rule = make_rule(tracker, name="rows drop", kind="metric", dag_id=dag_id,
                            params={"key": "rows_out", "change_pct": 50})
    post(tracker, run(dag_id, 0, tasks=1, metrics={"rows_out": 1000}))
    post(tracker, run(dag_id, 1, tasks=1, metrics={"rows_out": 1100}))
    post(tracker, run(dag_id, 2, tasks=1, metrics={"rows_out": 100}))
    (alert,) = wait_alerts(tracker, metric_rule["id"], lambda items: len(items) == 1, "open")
    assert "1100 -> 100" in alert["title"]

    table = f"analytics.t_{unique}"
    ds_rule = make_rule(tracker, name="rows bound", kind="dataset_rows", params={"dataset": table, "min": 10})
    ctx = seed.ctx(dag_id, "manual__x", NOW, "prod", "load", 1)
    post(tracker, [make_event("dataset", {"operation": "write", "table": table, "rows": 5}, context=ctx,
                              time="2026-11-01T02:00:00Z")])
    (alert,) = wait_alerts(tracker, ds_rule["id"], lambda items: len(items) == 1, "open")
    assert "5 < min 10" in alert["title"] and alert["links"]["dataset"]
    post(tracker, [make_event("dataset", {"operation": "write", "table": table, "rows": 50}, context=ctx,
                              time="2026-11-01T03:00:00Z")])
    wait_alerts(tracker, ds_rule["id"], lambda items: items[0]["state"] == "resolved")


def test_spark_job_failed(tracker: Any, webhook: WebhookReceiver, unique: str) -> None:
    dag_id = f"spark_{unique}"
    rule = make_rule(tracker, name="spark", kind="spark_failed", dag_id=dag_id, webhook_url=webhook.url)
    events = run(dag_id, 0, tasks=1)
    ctx = seed.ctx(dag_id, f"scheduled__{seed.iso(NOW)}", NOW, "prod", "extract_000", 1)
    events += seed.spark_app(ctx, f"app-{unique}", NOW + timedelta(minutes=1), stages=12, fail_job=True)
    post(tracker, events)
    (fired,) = webhook.wait_for(lambda got: len(got) >= 1)
    assert "Spark failed" in fired["runlink"]["title"] and fired["runlink"]["links"]["spark_app"]
    assert alerts_of(tracker, rule["id"], "open")


def test_missing_dag_run(tracker: Any, unique: str) -> None:
    dag_id = f"missing_{unique}"
    expected = datetime.now(timezone.utc) - timedelta(hours=2)
    post(tracker, [seed.dag_definition(dag_id, "prod", ["a"], next_run=expected)])
    rule = make_rule(tracker, name="late", kind="dag_missing", dag_id=dag_id, params={"grace_s": 60})
    evaluate = lambda: requests.post(tracker.url + "/api/v1/alerts/evaluate", headers=tracker.headers(),  # noqa: E731
                                     timeout=60)
    assert evaluate().ok
    (alert,) = wait_alerts(tracker, rule["id"], lambda items: len(items) == 1, "open")
    assert "missing" in alert["title"]
    post(tracker, seed.dag_run(dag_id, expected, tasks=1))
    assert evaluate().ok
    wait_alerts(tracker, rule["id"], lambda items: items[0]["state"] == "resolved")


def test_webhook_retried_with_backoff(tracker: Any, unique: str) -> None:
    receiver = WebhookReceiver(fail_first=2)
    try:
        dag_id = f"retry_{unique}"
        rule = make_rule(tracker, name="retry", kind="task_failed", dag_id=dag_id, webhook_url=receiver.url)
        post(tracker, run(dag_id, 0, tasks=1, failed={"extract_000"}))
        receiver.wait_for(lambda got: len(got) == 1, timeout=30)
        assert receiver.attempts == 3
        (alert,) = wait_alerts(tracker, rule["id"],
                               lambda items: items and items[0]["deliveries"][0]["status"] == "sent")
        assert alert["deliveries"][0]["attempts"] == 3
    finally:
        receiver.close()


def test_hanging_webhook_never_blocks_ingest(tracker: Any, unique: str) -> None:
    receiver = WebhookReceiver(hang_s=20)
    try:
        dag_id = f"hang_{unique}"
        make_rule(tracker, name="hang", kind="task_failed", dag_id=dag_id, webhook_url=receiver.url)
        for day in range(3):
            started = time.perf_counter()
            post(tracker, run(dag_id, day, tasks=2, failed={"extract_000"} if day != 1 else set()))
            assert time.perf_counter() - started < 5
    finally:
        receiver.close()


def test_rule_validation(tracker: Any) -> None:
    bad = [({"name": "x", "kind": "nope"}, "kind"), ({"name": "x", "kind": "duration", "dag_id": "d"}, "params.max_s"),
           ({"name": "x", "kind": "metric", "params": {"min": 1}}, "params.key"),
           ({"name": "x", "kind": "task_failed", "webhook_url": "ftp://x"}, "webhook_url")]
    for body, field in bad:
        response = requests.post(tracker.url + "/api/v1/alert-rules", json=body, headers=tracker.headers(), timeout=30)
        assert response.status_code == 422 and response.json()["detail"]["field"] == field, response.text
    read = tracker.make_token("read")
    response = requests.post(tracker.url + "/api/v1/alert-rules", json={"name": "x", "kind": "task_failed"},
                             headers={"Authorization": f"Bearer {read}"}, timeout=30)
    assert response.status_code == 403
    assert requests.get(tracker.url + "/api/v1/alert-rules", headers={"Authorization": f"Bearer {read}"},
                        timeout=30).ok


@pytest.fixture
def smtp() -> Any:
    receiver = SMTPReceiver()
    yield receiver
    receiver.close()


def test_email_over_smtp(tracker_factory: Any, smtp: SMTPReceiver, monkeypatch: pytest.MonkeyPatch,
                         unique: str) -> None:
    monkeypatch.setenv("RUNLINK_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("RUNLINK_SMTP_PORT", str(smtp.port))
    monkeypatch.setenv("RUNLINK_SMTP_FROM", "runlink@test.local")
    monkeypatch.setenv("RUNLINK_PUBLIC_URL", "http://runlink.example")
    server = tracker_factory(backend="sqlite")
    dag_id = f"mail_{unique}"
    make_rule(server, name="mail me", kind="task_failed", dag_id=dag_id, email_to="oncall@example.com, b@example.com")
    post(server, run(dag_id, 0, tasks=1, failed={"extract_000"}))
    messages = smtp.wait_for(2)
    assert sorted(m["rcpt"][0] for m in messages) == ["b@example.com", "oncall@example.com"]
    assert "Subject: [runlink] [FIRED] Task failed: " + dag_id in messages[0]["data"]
    assert "http://runlink.example/ui/task-attempts/" in messages[0]["data"]
