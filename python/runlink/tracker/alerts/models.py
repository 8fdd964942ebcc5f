"""Alert tables, on the tracker's `metadata` (migration 0003_alerts mirrors them).

`alerts` holds one row per firing: at most one *open* row per (rule, subject) — the de-duplication key —
and a resolved row keeps when and how it ended (auto when the condition cleared, manual by a person).
`alert_notifications` is the delivery outbox: ingest never waits on a webhook or an SMTP server.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Float, Index, Integer, String, Table, Text

from runlink.tracker.models import ID, INSTANT, metadata

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("instance", String(250)),
    Column("dag_id", String(250)),
    Column("task_id", String(250)),
    Column("params", Text, nullable=False),
    Column("webhook_url", Text),
    Column("email_to", Text),
    Column("created_at", String(INSTANT), nullable=False),
    Column("updated_at", String(INSTANT), nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("rule_id", String(ID), nullable=False),
    Column("subject", String(1000), nullable=False),
    Column("state", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("message", Text),
    Column("value", Float),
    Column("bound", Float),
    Column("ref", String(200)),
    Column("links", Text),
    Column("opened_at", String(INSTANT), nullable=False),
    Column("last_seen_at", String(INSTANT), nullable=False),
    Column("resolved_at", String(INSTANT)),
    Column("resolved_by", String(200)),
    Column("resolution", Text),
    Index("ix_alerts_rule_subject", "rule_id", "subject", "state"),
    Index("ix_alerts_state", "state", "opened_at", "id"),  # 0016: the keyset order, all or of one state
    Index("ix_alerts_opened", "opened_at", "id"),
)

alert_notifications = Table(
    "alert_notifications",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("alert_id", String(ID), nullable=False),
    Column("event", String(16), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("target", Text, nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", String(INSTANT), nullable=False),
    Column("last_error", Text),
    Column("created_at", String(INSTANT), nullable=False),
    Column("sent_at", String(INSTANT)),
    Index("ix_alert_notifications_due", "status", "next_attempt_at"),
    Index("ix_alert_notifications_alert", "alert_id"),
)

#: whether any rule is enabled (`?` is True): the alert evaluator's question, also asked by ingest in each batch's
#: write transaction (ingest.store); in key order, an index scan (a keyed write runs with sequential scans off)
ANY_RULE_ENABLED = "SELECT 1 FROM alert_rules WHERE enabled = ? ORDER BY id LIMIT 1"
