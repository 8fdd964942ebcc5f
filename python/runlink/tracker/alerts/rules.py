"""Alert rules: the kinds, their parameters (validated here, for the API, the CLI and the UI form alike),
and the rule/alert store (create, list, enable, delete, manual resolve)."""

from __future__ import annotations

import fnmatch
import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, update
from sqlalchemy.sql import Select

from runlink.instants import now_instant
from runlink.tracker import keyset
from runlink.tracker.alerts.models import ANY_RULE_ENABLED, alert_notifications, alert_rules, alerts
from runlink.tracker.sqlutil import run

#: kind -> (what it watches, parameter names). Subjects: a task (dag, task, map index), a DAG, a dataset.
KINDS: dict[str, dict[str, Any]] = {
    "task_failed": {"label": "Task attempt failed", "params": ("include_retries",)},
    "spark_failed": {"label": "Spark job or query failed", "params": ()},
    "duration": {"label": "Duration above a bound or above its own history",
                 "params": ("max_s", "k", "n", "min_history")},
    "metric": {"label": "User metric outside bounds or changed too much",
               "params": ("key", "min", "max", "change_pct")},
    "dataset_rows": {"label": "Dataset row count outside bounds or changed too much",
                     "params": ("dataset", "operation", "min", "max", "change_pct")},
    "dag_missing": {"label": "DAG run missing by its expected time", "params": ("grace_s",)},
    "slower": {"label": "Task slower than its history (k x median of the last n successful runs), with what "
                        "explains it", "params": ("k", "n", "min_history")},
    "skew": {"label": "A Spark stage's slowest task over ratio x its median task", "params": ("ratio", "min_stage_s")},
    "spill": {"label": "Spark spilled more than min_bytes in a task attempt", "params": ("min_bytes",)},
    "sql_statement": {"label": "A SQL statement's rows or duration outside bounds (statement text or table: "
                               "a substring or glob; empty = every statement of the task)",
                      "params": ("statement", "min_rows", "max_rows", "max_s")},
}
NUMBER_PARAMS = ("max_s", "k", "min", "max", "change_pct", "grace_s", "ratio", "min_stage_s", "min_bytes",
                 "min_rows", "max_rows")
INT_PARAMS = ("n", "min_history")


class RuleError(ValueError):
    """A rule the tracker refuses (-> 422), naming the field."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


def _number(name: str, value: Any, integer: bool = False) -> float | int | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise RuleError(f"{name}: a number", f"params.{name}") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise RuleError(f"{name}: a finite number", f"params.{name}")
    if integer:
        if not number.is_integer() or number < 1:
            raise RuleError(f"{name}: a whole number >= 1", f"params.{name}")
        return int(number)
    return number


def validate(body: dict[str, Any]) -> dict[str, Any]:
    """A rule body (API JSON or form fields) -> the stored columns. Raises RuleError."""
    kind = body.get("kind")
    if kind not in KINDS:
        raise RuleError(f"kind: one of {', '.join(KINDS)}", "kind")
    name = (body.get("name") or "").strip()
    if not name or len(name) > 200:
        raise RuleError("name: 1 to 200 characters", "name")
    raw = dict(body.get("params") or {})
    params: dict[str, Any] = {}
    for key in KINDS[kind]["params"]:
        value = raw.get(key)
        if key in NUMBER_PARAMS:
            value = _number(key, value)
        elif key in INT_PARAMS:
            value = _number(key, value, integer=True)
        elif key == "include_retries":
            value = value in (True, "true", "on", "1", 1)
        elif isinstance(value, str):
            value = value.strip() or None
        if value is not None:
            params[key] = value
    unknown = set(raw) - set(KINDS[kind]["params"])
    if unknown - {""} and any(raw[k] not in (None, "") for k in unknown):
        raise RuleError(f"params: {', '.join(sorted(unknown))} not used by {kind}", "params")
    dag_id = (body.get("dag_id") or "").strip() or None
    task_id = (body.get("task_id") or "").strip() or None
    if kind == "duration":
        if params.get("max_s") is None and params.get("k") is None:
            raise RuleError("duration: give max_s (a fixed bound) or k (median x k over the last n runs)",
                            "params.max_s")
        params.setdefault("n", 10)
        params.setdefault("min_history", 3)
        if not dag_id:
            raise RuleError("dag_id: required for a duration rule", "dag_id")
    if kind == "sql_statement" and all(params.get(k) is None for k in ("min_rows", "max_rows", "max_s")):
        raise RuleError("give min_rows, max_rows or max_s", "params.min_rows")
    if kind in ("metric", "dataset_rows"):
        needed = "key" if kind == "metric" else "dataset"
        if not params.get(needed):
            raise RuleError(f"{needed}: required", f"params.{needed}")
        if all(params.get(k) is None for k in ("min", "max", "change_pct")):
            raise RuleError("give min, max or change_pct", "params.min")
    if kind == "dataset_rows":
        if params.setdefault("operation", "write") not in ("write", "read", "any"):
            raise RuleError("operation: write, read or any", "params.operation")
    if kind == "slower":
        params.setdefault("k", 1.5)
        params.setdefault("n", 10)
        params.setdefault("min_history", 3)
    if kind == "skew":
        params.setdefault("ratio", 3.0)
        params.setdefault("min_stage_s", 1.0)
    if kind == "spill":
        params.setdefault("min_bytes", 0.0)
    if kind == "dag_missing":
        params.setdefault("grace_s", 600.0)
        if not dag_id:
            raise RuleError("dag_id: required (a name or a pattern like etl_*)", "dag_id")
    webhook = (body.get("webhook_url") or "").strip() or None
    if webhook and not webhook.startswith(("http://", "https://")):
        raise RuleError("webhook_url: an http(s) URL", "webhook_url")
    emails = body.get("email_to") or None
    if isinstance(emails, str):
        emails = [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()]
    if emails:
        for email in emails:
            if "@" not in email or " " in email or len(email) > 254:
                raise RuleError(f"email_to: {email!r} is not an address", "email_to")
    enabled = body.get("enabled", True)
    return {
        "name": name, "kind": kind, "enabled": enabled not in (False, "false", "off", "0", 0),
        "instance": (body.get("instance") or "").strip() or None, "dag_id": dag_id, "task_id": task_id,
        "params": orjson.dumps(params).decode(), "webhook_url": webhook,
        "email_to": ",".join(emails) if emails else None,
    }


def _plain(row: Any) -> dict[str, Any]:
    """A row as a dict with plain `str` keys (orjson refuses SQLAlchemy's str subclass `quoted_name`)."""
    mapping = row._mapping if hasattr(row, "_mapping") else row
    return {str(k): v for k, v in mapping.items()}


def rule_dict(row: Any) -> dict[str, Any]:
    m = _plain(row)
    m["params"] = orjson.loads(m["params"]) if m.get("params") else {}
    m["enabled"] = bool(m["enabled"])
    m["email_to"] = m["email_to"].split(",") if m.get("email_to") else []
    return m


def alert_dict(row: Any) -> dict[str, Any]:
    m = _plain(row)
    m["links"] = orjson.loads(m["links"]) if m.get("links") else {}
    return m


def rule_changed(app_state: Any, base_url: str, pk: str | None) -> None:
    """After a committed rule change (API or UI form): the tracker's alert worker, if it runs, re-checks the rule
    now; the first change also tells it the tracker's own URL, for the links in notifications."""
    worker = getattr(app_state, "alerts", None)
    if worker is not None:
        if worker.base_url is None:
            worker.base_url = base_url
        worker.rules_changed(pk)


def create_rule(conn: Connection, body: dict[str, Any]) -> dict[str, Any]:
    values = validate(body)
    now = now_instant()
    pk = str(uuid.uuid4())
    conn.execute(alert_rules.insert().values(id=pk, created_at=now, updated_at=now, **values))
    return get_rule(conn, pk)  # type: ignore[return-value]


def update_rule(conn: Connection, pk: str, body: dict[str, Any]) -> dict[str, Any] | None:
    current = get_rule(conn, pk)
    if current is None:
        return None
    merged = {**current, **body}
    values = validate(merged)
    conn.execute(update(alert_rules).where(alert_rules.c.id == pk).values(updated_at=now_instant(), **values))
    if not values["enabled"]:
        resolve_rule_alerts(conn, pk, "rule disabled")
    return get_rule(conn, pk)


def get_rule(conn: Connection, pk: str) -> dict[str, Any] | None:
    row = conn.execute(select(alert_rules).where(alert_rules.c.id == pk)).first()
    return rule_dict(row) if row else None


def list_rules(conn: Connection, enabled_only: bool = False) -> list[dict[str, Any]]:
    stmt = select(alert_rules).order_by(alert_rules.c.created_at, alert_rules.c.id)
    if enabled_only:
        stmt = stmt.where(alert_rules.c.enabled.is_(True))
    return [rule_dict(r) for r in conn.execute(stmt)]


def any_enabled(conn: Connection) -> bool:
    """Whether any rule is enabled (the evaluator skips walking ingested batches when none is)."""
    return run(conn, ANY_RULE_ENABLED, (True,)).first() is not None


def delete_rule(conn: Connection, pk: str) -> bool:
    """Delete a rule; its open alerts are resolved (history stays, so 'what fired last night' survives)."""
    if get_rule(conn, pk) is None:
        return False
    resolve_rule_alerts(conn, pk, "rule deleted")
    conn.execute(delete(alert_rules).where(alert_rules.c.id == pk))
    return True


def resolve_rule_alerts(conn: Connection, rule_pk: str, why: str) -> None:
    conn.execute(update(alerts).where(alerts.c.rule_id == rule_pk, alerts.c.state == "open").values(
        state="resolved", resolved_at=now_instant(), resolved_by="system", resolution=why))


def _alerts_select(state: str | None, rule_id: str | None, dag_id: str | None) -> Select:
    stmt = (select(alerts, alert_rules.c.name.label("rule_name"), alert_rules.c.kind.label("rule_kind"))
            .outerjoin(alert_rules, alert_rules.c.id == alerts.c.rule_id))
    if state:
        stmt = stmt.where(alerts.c.state == state)
    if rule_id:
        stmt = stmt.where(alerts.c.rule_id == rule_id)
    if dag_id:
        stmt = stmt.where(alerts.c.subject.like(f"%|{_like_escape(dag_id)}|%", escape="\\")
                          | alerts.c.subject.like(f"%|{_like_escape(dag_id)}", escape="\\"))
    return stmt


def _with_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each alert with the delivery status of its notifications."""
    if rows:
        ids = [r["id"] for r in rows]
        deliveries: dict[str, list[dict[str, Any]]] = {}
        for n in conn.execute(select(alert_notifications.c.alert_id, alert_notifications.c.event,
                                     alert_notifications.c.channel, alert_notifications.c.status,
                                     alert_notifications.c.attempts, alert_notifications.c.last_error)
                              .where(alert_notifications.c.alert_id.in_(ids[:900]))):
            deliveries.setdefault(n.alert_id, []).append(
                {"event": n.event, "channel": n.channel, "status": n.status, "attempts": n.attempts,
                 "last_error": n.last_error})
        for r in rows:
            r["deliveries"] = deliveries.get(r["id"], [])
    return rows


def list_alerts(conn: Connection, *, state: str | None = None, rule_id: str | None = None,
                dag_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    """Newest first; with the rule's name and kind, and the delivery status of each alert."""
    return alerts_page(conn, state=state, rule_id=rule_id, dag_id=dag_id, limit=limit)["items"]


#: newest first, the id breaking ties (the index alerts (state, opened_at, id) / (opened_at, id), migration 0016)
ALERTS_ORDER = (keyset.Order(alerts.c.opened_at, "opened_at", descending=True),
                keyset.Order(alerts.c.id, "id", descending=True))


def alerts_page(conn: Connection, *, state: str | None = None, rule_id: str | None = None,
                dag_id: str | None = None, cursor: str | None = None, limit: int = 200) -> dict[str, Any]:
    """A keyset page of alerts, newest first (`next`/`previous` continue; a bad cursor raises ValueError), each
    with its rule's name and kind and its deliveries."""
    page = keyset.page(conn, _alerts_select(state, rule_id, dag_id), ALERTS_ORDER, cursor, limit, alert_dict)
    _with_deliveries(conn, page["items"])
    return page


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def get_alert(conn: Connection, pk: str) -> dict[str, Any] | None:
    row = conn.execute(select(alerts).where(alerts.c.id == pk)).first()
    return alert_dict(row) if row else None


def resolve_alert(conn: Connection, pk: str, who: str, note: str | None = None) -> dict[str, Any] | None:
    """Manual resolve. The alert stays resolved until a *new* occurrence (another attempt/run) fires."""
    current = get_alert(conn, pk)
    if current is None:
        return None
    if current["state"] == "open":
        conn.execute(update(alerts).where(alerts.c.id == pk).values(
            state="resolved", resolved_at=now_instant(), resolved_by=who, resolution=note or "resolved manually"))
    return get_alert(conn, pk)


def matches(pattern: str | None, value: str | None) -> bool:
    """Empty pattern matches anything; otherwise an exact name or an fnmatch pattern (etl_*)."""
    if not pattern:
        return True
    if value is None:
        return False
    return value == pattern or fnmatch.fnmatchcase(value, pattern)
