"""Alerts API: rules (read: list/get; admin: create/update/delete) and alert events (list; admin: resolve)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, Field

from runlink.tracker.alerts import rules as alert_rules
from runlink.tracker.auth import require
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1", default_response_class=JSONBody, tags=["alerts"])


class RuleIn(BaseModel):
    name: str = Field(description="shown in notifications")
    kind: str = Field(description="task_failed | spark_failed | duration | metric | dataset_rows | dag_missing")
    enabled: bool = True
    instance: str | None = Field(None, description="Airflow instance uid (empty: any)")
    dag_id: str | None = Field(None, description="DAG id or fnmatch pattern (etl_*); empty: any")
    task_id: str | None = Field(None, description="task id or pattern; for duration, empty = the DAG run")
    params: dict[str, Any] = Field(default_factory=dict, description=(
        "duration: max_s and/or k, n (10), min_history (3); metric: key, min, max, change_pct; "
        "dataset_rows: dataset (identity substring or pattern), operation (write|read|any), min, max, "
        "change_pct; dag_missing: grace_s (600); task_failed: include_retries"))
    webhook_url: str | None = Field(None, description="Slack-compatible incoming webhook (or any JSON receiver)")
    email_to: list[str] | str | None = None


class RulePatch(BaseModel):
    name: str | None = None
    enabled: bool | None = None
    instance: str | None = None
    dag_id: str | None = None
    task_id: str | None = None
    params: dict[str, Any] | None = None
    webhook_url: str | None = None
    email_to: list[str] | str | None = None


class ResolveIn(BaseModel):
    note: str | None = None


def _invalid(exc: alert_rules.RuleError) -> HTTPException:
    return HTTPException(422, {"message": str(exc), "field": exc.field})


def _changed(request: Request, pk: str | None) -> None:
    alert_rules.rule_changed(request.app.state, str(request.base_url).rstrip("/"), pk)


@router.get("/alert-rules/kinds", dependencies=[Depends(require("read"))])
def rule_kinds() -> JSONBody:
    """The rule kinds and the parameters each uses."""
    return JSONBody({k: {"label": v["label"], "params": list(v["params"])} for k, v in alert_rules.KINDS.items()})


@router.get("/alert-rules", dependencies=[Depends(require("read"))])
def list_rules(request: Request) -> JSONBody:
    with request.app.state.db.read() as conn:
        return JSONBody({"items": alert_rules.list_rules(conn)})


@router.post("/alert-rules", status_code=201, dependencies=[Depends(require("admin"))])
def create_rule(request: Request, body: RuleIn) -> JSONBody:
    """Create a rule; it is evaluated at once against the current state (so it can fire right away)."""
    try:
        with request.app.state.db.write() as conn:
            rule = alert_rules.create_rule(conn, body.model_dump())
    except alert_rules.RuleError as exc:
        raise _invalid(exc) from None
    _changed(request, rule["id"])
    return JSONBody(rule, status_code=201)


@router.get("/alert-rules/{pk}", dependencies=[Depends(require("read"))])
def get_rule(request: Request, pk: str) -> JSONBody:
    with request.app.state.db.read() as conn:
        rule = alert_rules.get_rule(conn, pk)
    if rule is None:
        raise HTTPException(404, "rule not found")
    return JSONBody(rule)


@router.patch("/alert-rules/{pk}", dependencies=[Depends(require("admin"))])
def patch_rule(request: Request, pk: str, body: RulePatch) -> JSONBody:
    """Change fields (for example `{"enabled": false}`); disabling resolves the rule's open alerts."""
    try:
        with request.app.state.db.write() as conn:
            rule = alert_rules.update_rule(conn, pk, body.model_dump(exclude_unset=True))
    except alert_rules.RuleError as exc:
        raise _invalid(exc) from None
    if rule is None:
        raise HTTPException(404, "rule not found")
    _changed(request, pk)
    return JSONBody(rule)


@router.delete("/alert-rules/{pk}", status_code=204, response_class=Response, dependencies=[Depends(require("admin"))])
def delete_rule(request: Request, pk: str) -> Response:
    """204 with no body at all (a body on a 204 desynchronizes the next request on a keep-alive connection)."""
    with request.app.state.db.write() as conn:
        if not alert_rules.delete_rule(conn, pk):
            raise HTTPException(404, "rule not found")
    return Response(status_code=204)


@router.get("/alerts", dependencies=[Depends(require("read"))])
def list_alerts(request: Request, state: str | None = Query(None, description="open | resolved"),
                rule_id: str | None = None, dag_id: str | None = None,
                limit: int = Query(200, ge=1, le=1000), cursor: str | None = None) -> JSONBody:
    """Alert events, newest first, each with its deliveries (channel, status, attempts, last error); a keyset
    page: pass `next` (or `previous`) back as `cursor`."""
    try:
        with request.app.state.db.read() as conn:
            return JSONBody(alert_rules.alerts_page(conn, state=state, rule_id=rule_id, dag_id=dag_id, cursor=cursor,
                                                    limit=limit))
    except ValueError:
        raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None


@router.post("/alerts/{pk}/resolve", dependencies=[Depends(require("admin"))])
def resolve_alert(request: Request, pk: str, body: ResolveIn | None = None) -> JSONBody:
    """Manual resolve: stays resolved until a new occurrence (another attempt or run) fires."""
    with request.app.state.db.write() as conn:
        alert = alert_rules.resolve_alert(conn, pk, "api", body.note if body else None)
    if alert is None:
        raise HTTPException(404, "alert not found")
    return JSONBody(alert)


@router.post("/alerts/evaluate", dependencies=[Depends(require("admin"))])
def evaluate_now(request: Request) -> JSONBody:
    """Run the periodic checks (missing DAG runs) and re-check every rule now, in this request."""
    worker = getattr(request.app.state, "alerts", None)
    if worker is None:
        raise HTTPException(503, "the alert worker is not running")
    counts = {}
    for part in (worker.run_periodic(), worker.run_touched(set(), set(), True, {None})):
        for key, value in part.items():
            counts[key] = counts.get(key, 0) + value
    return JSONBody(counts)
