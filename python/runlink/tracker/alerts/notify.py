"""Notifications: Slack-compatible webhook JSON and e-mail over SMTP, sent from the outbox with retries and
exponential backoff by a background thread (never by the request that caused the alert).

SMTP comes from the environment of the tracker: RUNLINK_SMTP_HOST, RUNLINK_SMTP_PORT (25), RUNLINK_SMTP_USER,
RUNLINK_SMTP_PASSWORD, RUNLINK_SMTP_FROM (runlink@<host>), RUNLINK_SMTP_STARTTLS (false), RUNLINK_SMTP_SSL.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import uuid
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from typing import Any

import orjson
import requests
from sqlalchemy import Connection, select, update

from runlink.instants import now_instant
from runlink.tracker.alerts.models import alert_notifications

log = logging.getLogger("runlink.alerts")

MAX_ATTEMPTS = 8
BACKOFF_BASE_S = 1.0
BACKOFF_MAX_S = 300.0
TIMEOUT_S = 10.0
#: a claimed notification not recorded within this time (process died) is sent again
LEASE_S = 120.0


def _link(base_url: str | None, links: dict[str, Any]) -> str | None:
    if not base_url:
        return None
    base = base_url.rstrip("/")
    if links.get("spark_app"):
        return f"{base}/ui/spark-apps/{links['spark_app']}"
    if links.get("task_attempt"):
        return f"{base}/ui/task-attempts/{links['task_attempt']}"
    if links.get("dag_run"):
        return f"{base}/ui/dag-runs/{links['dag_run']}"
    if links.get("dataset"):
        return f"{base}/ui/datasets/{links['dataset']}"
    if links.get("dag_id"):
        return f"{base}/ui/dags/{links['dag_id']}"
    return f"{base}/ui/alerts"


def build_payload(event: str, alert: dict[str, Any], rule: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    """Slack-compatible: `text` (fallback) plus `blocks`; a `runlink` object carries the machine-readable facts
    (Slack ignores unknown keys; other receivers can use them)."""
    links = alert.get("links") or {}
    url = _link(base_url, links)
    icon = ":red_circle:" if event == "fired" else ":large_green_circle:"
    head = "FIRING" if event == "fired" else "RESOLVED"
    text = f"{icon} [{head}] {alert['title']}"
    detail = alert.get("resolution") if event == "resolved" else alert.get("message")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{head}* {alert['title']}"}},
    ]
    if detail:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": str(detail)[:2900]}})
    context = f"rule *{rule['name']}* ({rule['kind']})"
    if url:
        context += f" · <{url}|open in runlink>"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]})
    return {
        "text": text + (f" {url}" if url else ""),
        "blocks": blocks,
        "runlink": {"event": event, "alert_id": alert["id"], "rule_id": rule["id"], "rule": rule["name"],
                    "kind": rule["kind"], "subject": alert["subject"], "state": alert.get("state"),
                    "title": alert["title"], "message": alert.get("message"), "value": alert.get("value"),
                    "bound": alert.get("bound"), "links": links, "url": url,
                    "opened_at": alert.get("opened_at"), "resolved_at": alert.get("resolved_at")},
    }


def send_webhook(url: str, payload: dict[str, Any]) -> None:
    response = requests.post(url, data=orjson.dumps(payload), headers={"Content-Type": "application/json"},
                             timeout=TIMEOUT_S)
    if response.status_code >= 300:
        raise RuntimeError(f"webhook answered {response.status_code}: {response.text[:200]}")


def send_email(to: str, payload: dict[str, Any]) -> None:
    host = os.environ.get("RUNLINK_SMTP_HOST")
    if not host:
        raise RuntimeError("RUNLINK_SMTP_HOST is not set: e-mail alerts cannot be sent")
    port = int(os.environ.get("RUNLINK_SMTP_PORT", "25"))
    facts = payload["runlink"]
    message = EmailMessage()
    message["Subject"] = f"[runlink] [{facts['event'].upper()}] {facts['title']}"[:250]
    message["From"] = os.environ.get("RUNLINK_SMTP_FROM") or f"runlink@{socket.getfqdn()}"
    message["To"] = to
    message["Message-ID"] = f"<{uuid.uuid4()}@runlink>"
    lines = [facts["title"], "", str(facts.get("message") or ""), "", f"rule: {facts['rule']} ({facts['kind']})"]
    if facts.get("url"):
        lines.append(f"open: {facts['url']}")
    message.set_content("\n".join(lines))
    ssl = os.environ.get("RUNLINK_SMTP_SSL", "").lower() in ("1", "true", "yes")
    smtp_class = smtplib.SMTP_SSL if ssl else smtplib.SMTP
    with smtp_class(host, port, timeout=TIMEOUT_S) as smtp:
        if os.environ.get("RUNLINK_SMTP_STARTTLS", "").lower() in ("1", "true", "yes"):
            smtp.starttls()
        user = os.environ.get("RUNLINK_SMTP_USER")
        if user:
            smtp.login(user, os.environ.get("RUNLINK_SMTP_PASSWORD", ""))
        smtp.send_message(message)


def backoff_s(attempts: int) -> float:
    return min(BACKOFF_MAX_S, BACKOFF_BASE_S * (2 ** max(0, attempts - 1)))


def claim_due(conn: Connection, limit: int = 20) -> list[dict[str, Any]]:
    """Pending notifications whose time has come, marked `sending` (inside a write transaction, so several
    worker processes never send the same one)."""
    now = now_instant()
    rows = [{str(k): v for k, v in r._mapping.items()} for r in conn.execute(
        select(alert_notifications).where(alert_notifications.c.status == "pending",
                                          alert_notifications.c.next_attempt_at <= now)
        .order_by(alert_notifications.c.next_attempt_at).limit(limit))]
    if rows:
        lease = (datetime.now(timezone.utc) + timedelta(seconds=LEASE_S)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn.execute(update(alert_notifications).where(alert_notifications.c.id.in_([r["id"] for r in rows]))
                     .values(status="sending", next_attempt_at=lease))
    return rows


def next_due(conn: Connection) -> str | None:
    return conn.execute(select(alert_notifications.c.next_attempt_at)
                        .where(alert_notifications.c.status == "pending")
                        .order_by(alert_notifications.c.next_attempt_at).limit(1)).scalar()


def deliver(row: dict[str, Any]) -> str | None:
    """Send one notification; None on success, else the error text (never raises)."""
    try:
        payload = orjson.loads(row["payload"])
        if row["channel"] == "webhook":
            send_webhook(row["target"], payload)
        elif row["channel"] == "email":
            send_email(row["target"], payload)
        else:
            return f"unknown channel {row['channel']}"
    except Exception as exc:  # noqa: BLE001 - any failure is retried later with backoff
        return f"{type(exc).__name__}: {exc}"[:1000]
    return None


def record(conn: Connection, row: dict[str, Any], error: str | None) -> None:
    attempts = row["attempts"] + 1
    if error is None:
        values: dict[str, Any] = {"status": "sent", "attempts": attempts, "sent_at": now_instant(), "last_error": None}
    elif attempts >= MAX_ATTEMPTS:
        values = {"status": "failed", "attempts": attempts, "last_error": error}
        log.warning("alert notification %s to %s gave up after %d attempts: %s", row["id"], row["channel"],
                    attempts, error)
    else:
        when = datetime.now(timezone.utc) + timedelta(seconds=backoff_s(attempts))
        values = {"status": "pending", "attempts": attempts, "last_error": error,
                  "next_attempt_at": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
    conn.execute(update(alert_notifications).where(alert_notifications.c.id == row["id"]).values(**values))


def release_stuck(conn: Connection) -> None:
    """A process that died while sending leaves rows `sending`: once their lease ran out, they are pending again."""
    conn.execute(update(alert_notifications).where(alert_notifications.c.status == "sending",
                                                   alert_notifications.c.next_attempt_at <= now_instant())
                 .values(status="pending"))
