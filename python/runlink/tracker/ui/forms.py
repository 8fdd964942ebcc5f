"""The UI's form posts: log in and out, revoke a token, and the alert forms (create, enable/disable and delete
a rule, resolve an alert). Each answers with a redirect (303) to the page to show next."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from runlink.tracker.alerts import rules as alert_rules
from runlink.tracker.auth import TokenError, check_unknown_token_rate, hash_token, revoke_token, scope_of
from runlink.tracker.ui import session as sessions
from runlink.tracker.ui.pages import login_page
from runlink.tracker.ui.queries import found

router = APIRouter(include_in_schema=False)

#: a form's change, inside its write transaction: (where to go next, the alert rule it changed or None)
Change = Callable[[Connection, sessions.Session, Any], tuple[str, str | None]]


@router.post("/ui/login")
async def login(request: Request) -> Response:
    """Token -> session (read or admin tokens; an ingest token cannot read)."""
    form = await request.form()
    nonce = sessions.unsign_from(request, sessions.LOGIN_COOKIE)
    target = sessions.safe_next(str(form.get("next") or ""))
    if not nonce or not sessions.csrf_ok(sessions.Session("login", nonce), str(form.get("csrf") or "")):
        return login_page(request, 403, target, "The form expired: try again.")
    token = str(form.get("token") or "").strip()
    scope = None
    if token:
        cache = request.app.state.tokens
        if cache.cached(token) is None:
            check_unknown_token_rate(cache, request)  # guessing tokens here costs a lookup each: limited
        with request.app.state.db.read() as conn:
            scope = scope_of(conn, token)
    if scope not in ("read", "admin"):
        message = "This token cannot read (an ingest token)." if scope == "ingest" else "Unknown token."
        return login_page(request, 401, target, message)
    with request.app.state.db.write() as conn:
        sid, _session = sessions.create(conn, scope, hash_token(token))
    response = RedirectResponse(target, status_code=303)
    sessions.set_session_cookie(request, response, sid)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
    return response


@router.post("/ui/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    sid = sessions.unsign_from(request, sessions.COOKIE)
    if sid:
        with request.app.state.db.read() as conn:
            session = sessions.lookup(conn, sid)
        if session is not None:
            sessions.check_csrf(session, form)
            with request.app.state.db.write() as conn:
                sessions.destroy(conn, sid)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


async def _admin_form(request: Request, back: str, need: Callable[[sessions.Session], None],
                      change: Change) -> Response:
    """Every form that changes something: the login first (then back to page `back`), the form's CSRF token, the
    right `need` checks; then `change` in one write transaction. A rule it changed is re-checked by the alert
    worker once committed."""
    form = await request.form()
    try:
        session = await run_in_threadpool(sessions.ui_session, request)
    except sessions.LoginRequired:
        return RedirectResponse("/ui/login?next=" + back, status_code=303)
    sessions.check_csrf(session, form)
    need(session)
    with request.app.state.db.write() as conn:
        target, changed_rule = change(conn, session, form)
    if changed_rule is not None:
        alert_rules.rule_changed(request.app.state, str(request.base_url).rstrip("/"), changed_rule)
    return sessions.finish(request, RedirectResponse(target, status_code=303))


@router.post("/ui/tokens/{name}/revoke")
async def form_revoke_token(request: Request, name: str) -> Response:
    """Revoke a token; revoking the session's own token ends this session too (back to the login page)."""

    def revoke(conn: Connection, session: sessions.Session, form: Any) -> tuple[str, None]:
        try:
            revoke_token(conn, name)
        except TokenError as exc:
            if "no live token" in str(exc):
                raise HTTPException(404, str(exc)) from None
            return "/ui/tokens?" + urlencode({"error": str(exc)}), None
        return "/ui/tokens", None

    return await _admin_form(request, "/ui/tokens", sessions.need_admin, revoke)


@router.post("/ui/alerts/rules")
async def form_create_rule(request: Request) -> Response:
    def create(conn: Connection, session: sessions.Session, form: Any) -> tuple[str, str | None]:
        body = {k: str(v) for k, v in form.items() if k != "csrf"}
        params = {k[len("p_"):]: v for k, v in body.items() if k.startswith("p_")}
        used = alert_rules.KINDS.get(body.get("kind") or "", {}).get("params", ())
        rule_body = {k: v for k, v in body.items() if not k.startswith("p_")}
        rule_body["params"] = {k: v for k, v in params.items() if k in used}
        try:
            rule = alert_rules.create_rule(conn, rule_body)  # a refused rule writes nothing
        except alert_rules.RuleError as exc:
            return "/ui/alerts?" + urlencode({"error": str(exc)}), None
        return f"/ui/alerts#rule-{rule['id']}", rule["id"]

    return await _admin_form(request, "/ui/alerts", sessions.need_manage, create)


@router.post("/ui/alerts/rules/{pk}/toggle")
async def form_toggle_rule(request: Request, pk: str) -> Response:
    def toggle(conn: Connection, session: sessions.Session, form: Any) -> tuple[str, str]:
        rule = alert_rules.get_rule(conn, pk)
        if rule is None:
            raise HTTPException(404, "rule not found")
        alert_rules.update_rule(conn, pk, {"enabled": not rule["enabled"]})
        return f"/ui/alerts#rule-{pk}", pk

    return await _admin_form(request, "/ui/alerts", sessions.need_manage, toggle)


@router.post("/ui/alerts/rules/{pk}/delete")
async def form_delete_rule(request: Request, pk: str) -> Response:
    def delete(conn: Connection, session: sessions.Session, form: Any) -> tuple[str, None]:
        alert_rules.delete_rule(conn, pk)
        return "/ui/alerts", None

    return await _admin_form(request, "/ui/alerts", sessions.need_manage, delete)


@router.post("/ui/alerts/{pk}/resolve")
async def form_resolve_alert(request: Request, pk: str) -> Response:
    def resolve(conn: Connection, session: sessions.Session, form: Any) -> tuple[str, None]:
        note = str(form.get("note") or "") or None
        found(alert_rules.resolve_alert(conn, pk, f"ui ({session.scope})", note), "alert")
        return "/ui/alerts", None

    return await _admin_form(request, "/ui/alerts", sessions.need_manage, resolve)
