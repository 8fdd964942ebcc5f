"""The web UI (server-rendered Jinja2, same port as the API) and the JSON twin of every page.

HTML: /ui/... (session cookie from a token login, or `--open`). JSON: /api/v1/views/... (bearer token, read
scope) returns exactly the data each page renders, so anything seen in the UI can be scripted.
"""

from __future__ import annotations

import functools
import inspect
import math
import re
import secrets
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from runlink import __version__
from runlink.context import ContextError
from runlink.tracker import ui_queries
from runlink.tracker.alerts import engine
from runlink.tracker.alerts import rules as alert_rules
from runlink.tracker.auth import (
    TokenError,
    check_unknown_token_rate,
    hash_token,
    list_tokens,
    require,
    revoke_token,
    scope_of,
)
from runlink.tracker.ingest import instant
from runlink.tracker.openlineage import pending as openlineage_pending
from runlink.tracker.routes import JSONBody
from runlink.tracker.ui import fragments
from runlink.tracker.ui import session as sessions

UI_DIR = Path(__file__).resolve().parent.parent / "ui"
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
           "30d": timedelta(days=30)}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}

html_router = APIRouter(include_in_schema=False)
api_router = APIRouter(prefix="/api/v1/views", dependencies=[Depends(require("read"))],
                       default_response_class=JSONBody, tags=["views"])


# ---------------------------------------------------------------- template helpers

def fmt_duration(seconds: float | None) -> str:
    """1.2s, 3m 05s, 2h 10m: compact, for tables."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_num(n: float | None) -> str:
    if n is None:
        return "–"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def fmt_ts(value: str | None) -> str:
    if not value:
        return "–"
    return value[:19].replace("T", " ")


def is_web_link(url: Any) -> bool:
    """Only http(s) URLs become links: a producer's `javascript:` or `data:` URL is shown as text."""
    if not isinstance(url, str):
        return False
    parsed = urlsplit(url.strip())
    return parsed.scheme.lower() in ("http", "https") and bool(parsed.netloc) and url == url.strip() \
        and not any(ord(c) < 32 for c in url)


def state_class(state: str | None) -> str:
    return "st-" + re.sub(r"[^a-z_]", "", (state or "unknown").lower())


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(str(UI_DIR / "templates")), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True, auto_reload=False)
    env.filters.update(dur=fmt_duration, bytes=fmt_bytes, num=fmt_num, ts=fmt_ts, stc=state_class,
                       urlq=lambda v: quote(str(v), safe=""), weblink=is_web_link)
    env.globals.update(version=__version__, urlencode=urlencode, kinds=alert_rules.KINDS, math=math,
                       fragments=fragments)
    return env


ENV = _env()


def _static_version() -> str:
    try:
        return str(int(max(p.stat().st_mtime for p in (UI_DIR / "static").iterdir())))
    except (OSError, ValueError):
        return __version__


STATIC_VERSION = _static_version()


def render(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    session: sessions.Session | None = getattr(request.state, "ui_session", None)
    started = time.perf_counter()
    body = ENV.get_template(name).render(request=request, session=session, static_v=STATIC_VERSION,
                                         open_mode=request.app.state.settings.open_reads, **context)
    headers = {**SECURITY_HEADERS, "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"}
    return HTMLResponse(body, status_code=status, headers=headers)


# ---------------------------------------------------------------- sessions

def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "ui_key", None)
    if key is None:
        key = sessions.load_key(state.settings.home)
        state.ui_key = key
    return key


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


class LoginRequired(Exception):
    """Raised by `ui_session` when the visitor must log in (turned into a redirect)."""


def ui_session(request: Request) -> sessions.Session:
    """Dependency of every page: the session of the cookie, or (with --open) a fresh local session."""
    sid = sessions.unsign(_key(request), request.cookies.get(sessions.COOKIE))
    session = None
    if sid:
        with request.app.state.db.read() as conn:
            session = sessions.lookup(conn, sid)
    if session is None and request.app.state.settings.open_reads:
        with request.app.state.db.write() as conn:
            sid, session = sessions.create(conn, "open", None)
        request.state.new_sid = sid
    if session is None:
        raise LoginRequired()
    request.state.ui_session = session
    return session


def _finish(request: Request, response: Response) -> Response:
    new_sid = getattr(request.state, "new_sid", None)
    if new_sid:
        _set_cookie(request, response, sessions.COOKIE, sessions.sign(_key(request), new_sid),
                    sessions.SESSION_HOURS * 3600)
    return response


def _check_csrf(request: Request, session: sessions.Session, form: Any) -> None:
    if not sessions.csrf_ok(session, form.get("csrf")):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and submit again")


def _need_manage(session: sessions.Session) -> None:
    if not session.can_manage:
        raise HTTPException(403, "managing alerts needs an admin token (log in with one)")


def _safe_next(value: str | None) -> str:
    """Only same-site paths under /ui (no open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/dags"


@html_router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/dags", status_code=307)


@html_router.get("/ui")
@html_router.get("/ui/")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/dags", status_code=307)


def _login_page(request: Request, status: int, target: str, error: str | None) -> Response:
    """The login form with a fresh login-CSRF nonce (echoed by the form, signed in a short-lived cookie)."""
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, next=target, error=error, login_csrf=nonce)
    _set_cookie(request, response, sessions.LOGIN_COOKIE, sessions.sign(_key(request), nonce), 1800)
    return response


@html_router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _login_page(request, 200, _safe_next(next), None)


@html_router.post("/ui/login")
async def login(request: Request) -> Response:
    """Token -> session (read or admin tokens; an ingest token cannot read)."""
    form = await request.form()
    nonce = sessions.unsign(_key(request), request.cookies.get(sessions.LOGIN_COOKIE))
    target = _safe_next(str(form.get("next") or ""))
    if not nonce or not sessions.csrf_ok(sessions.Session("login", nonce), str(form.get("csrf") or "")):
        return _login_page(request, 403, target, "The form expired: try again.")
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
        return _login_page(request, 401, target, message)
    with request.app.state.db.write() as conn:
        sid, _session = sessions.create(conn, scope, hash_token(token))
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, sessions.COOKIE, sessions.sign(_key(request), sid), sessions.SESSION_HOURS * 3600)
    response.delete_cookie(sessions.LOGIN_COOKIE, path="/")
    return response


@html_router.post("/ui/logout")
async def logout(request: Request) -> Response:
    form = await request.form()
    sid = sessions.unsign(_key(request), request.cookies.get(sessions.COOKIE))
    if sid:
        with request.app.state.db.read() as conn:
            session = sessions.lookup(conn, sid)
        if session is not None:
            _check_csrf(request, session, form)
            with request.app.state.db.write() as conn:
                sessions.destroy(conn, sid)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(sessions.COOKIE, path="/")
    return response


# ---------------------------------------------------------------- filters

def _time_filter(window: str | None, since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """`window` (1h/24h/7d/30d) or explicit ISO `since`/`until` -> stored instants (422 on garbage)."""
    try:
        since_i = instant(since) if since else None
        until_i = instant(until) if until else None
    except ContextError:
        raise HTTPException(422, {"message": "since/until: not an ISO-8601 instant", "field": "since"}) from None
    if window and window in WINDOWS and not since_i:
        since_i = (datetime.now(timezone.utc) - WINDOWS[window]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return since_i, until_i


def _read(request: Request, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    with request.app.state.db.read() as conn:
        return fn(conn, *args, **kwargs)


def _found(value: Any, what: str) -> Any:
    if value is None:
        raise HTTPException(404, f"{what} not found")
    return value


def _empty(value: str | None) -> str | None:
    return value or None


# ---------------------------------------------------------------- page data (shared by HTML and JSON)

def data_dags(conn: Any, instance: str | None, state: str | None, window: str | None, since: str | None,
              until: str | None, q: str | None) -> dict[str, Any]:
    since_i, until_i = _time_filter(window, since, until)
    view = ui_queries.dags_view(conn, instance=instance, state=state, since=since_i, until=until_i, q=q)
    view["filters"]["window"] = window
    view["options"] = ui_queries.filter_options(conn)
    view["open_alerts"] = _open_alert_counts(conn)
    return view


def _open_alert_counts(conn: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alert_rules.list_alerts(conn, state="open", limit=1000):
        dag_id = (alert.get("links") or {}).get("dag_id")
        if dag_id:
            counts[dag_id] = counts.get(dag_id, 0) + 1
    return counts


def data_dag(conn: Any, dag_id: str, instance: str | None, state: str | None, window: str | None,
             since: str | None, until: str | None) -> dict[str, Any]:
    since_i, until_i = _time_filter(window, since, until)
    view = _found(ui_queries.dag_view(conn, dag_id, instance=instance, state=state, since=since_i, until=until_i),
                  "DAG")
    view["filters"]["window"] = window
    view["options"] = ui_queries.filter_options(conn)
    view["alerts"] = [a for a in alert_rules.list_alerts(conn, limit=50)
                      if (a.get("links") or {}).get("dag_id") == dag_id][:20]
    return view


def data_stage(conn: Any, app_pk: str, stage_id: int, attempt_id: int) -> dict[str, Any]:
    app = _found(ui_queries.spark_app_view(conn, app_pk), "Spark app")
    stage = next((s for s in app["stages"] if s["stage_id"] == stage_id and s["attempt_id"] == attempt_id), None)
    stage = _found(stage, "stage")
    jobs = [j for j in app["jobs"] if j["job_id"] in (stage.get("job_ids") or [])]
    others = [s for s in app["stages"] if s["stage_id"] == stage_id and s["attempt_id"] != attempt_id]
    return {"app": {k: app[k] for k in ("id", "app_id", "name", "state", "owner", "analysis", "start_time",
                                        "end_time")},
            "stage": stage, "jobs": jobs, "other_attempts": others}


def data_alerts(conn: Any) -> dict[str, Any]:
    return {"open": alert_rules.list_alerts(conn, state="open"),
            "recent": alert_rules.list_alerts(conn, state="resolved", limit=50),
            "rules": alert_rules.list_rules(conn)}


# ---------------------------------------------------------------- HTML pages

def page(name: str):  # noqa: ANN201
    """Decorator body shared by pages: session check, page render, cookie refresh; login redirect."""

    def wrap(fn):  # noqa: ANN001, ANN202
        async def handler(request: Request, **kwargs: Any) -> Response:
            try:
                session = await run_in_threadpool(ui_session, request)
            except LoginRequired:
                target = request.url.path + (("?" + request.url.query) if request.url.query else "")
                return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)
            context = await run_in_threadpool(_call, request, fn, session, kwargs)
            if isinstance(context, Response):
                return _finish(request, context)
            return _finish(request, render(request, name, **context))

        handler = functools.wraps(fn)(handler)
        params = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("conn", "session")]
        handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request), *params])
        return handler

    return wrap


def _call(request: Request, fn, session: sessions.Session, kwargs: dict[str, Any]) -> Any:  # noqa: ANN001
    with request.app.state.db.read() as conn:
        return fn(conn=conn, session=session, **kwargs)


@html_router.get("/ui/instances")
@page("instances.html")
def page_instances(conn: Any, session: sessions.Session) -> dict[str, Any]:
    return {"view": ui_queries.instances_view(conn), "nav": "instances",
            "lineage_waiting": openlineage_pending.counts(conn, openlineage_pending.default_ttl_s())}


@html_router.get("/ui/dags")
@page("dags.html")
def page_dags(conn: Any, session: sessions.Session, instance: str | None = None, state: str | None = None,
              window: str | None = None, since: str | None = None, until: str | None = None,
              q: str | None = None) -> dict[str, Any]:
    view = data_dags(conn, _empty(instance), _empty(state), _empty(window), _empty(since), _empty(until), _empty(q))
    return {"view": view, "nav": "dags"}


@html_router.get("/ui/dags/{dag_id}")
@page("dag.html")
def page_dag(conn: Any, session: sessions.Session, dag_id: str, instance: str | None = None,
             state: str | None = None, window: str | None = None, since: str | None = None,
             until: str | None = None) -> dict[str, Any]:
    view = data_dag(conn, dag_id, _empty(instance), _empty(state), _empty(window), _empty(since), _empty(until))
    return {"view": view, "nav": "dags"}


@html_router.get("/ui/dag-runs/{pk}")
@page("dag_run.html")
def page_dag_run(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": _found(ui_queries.dag_run_view(conn, pk), "DAG run"), "nav": "dags"}


@html_router.get("/ui/task-attempts/{pk}")
@page("task_attempt.html")
def page_task_attempt(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": _found(ui_queries.task_attempt_view(conn, pk), "task attempt"), "nav": "dags"}


@html_router.get("/ui/attempt")
@page("error.html")
def page_attempt_by_context(conn: Any, session: sessions.Session, dag_id: str = "", dag_run_id: str = "",
                            task_id: str = "", try_number: int | None = None, map_index: int = -1,
                            uid: str | None = None) -> RedirectResponse:
    """The Airflow UI's "runlink" extra link: Airflow names the attempt, the tracker finds its page (the login
    comes first, so the names are optional here and a link missing one is a 404, like an unknown attempt)."""
    pk = (ui_queries.attempt_by_context(conn, dag_id, dag_run_id, task_id, try_number, map_index, _empty(uid))
          if dag_id and dag_run_id and task_id else None)
    return RedirectResponse(f"/ui/task-attempts/{quote(_found(pk, 'task attempt'), safe='')}", status_code=303)


@html_router.get("/ui/spark-apps/{pk}")
@page("spark_app.html")
def page_spark_app(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": _found(ui_queries.spark_app_view(conn, pk), "Spark app"), "nav": "dags"}


@html_router.get("/ui/spark-apps/{pk}/stages/{stage_id}/{attempt_id}")
@page("stage.html")
def page_stage(conn: Any, session: sessions.Session, pk: str, stage_id: int, attempt_id: int) -> dict[str, Any]:
    return {"view": data_stage(conn, pk, stage_id, attempt_id), "nav": "dags"}


@html_router.get("/ui/datasets")
@page("datasets.html")
def page_datasets(conn: Any, session: sessions.Session, q: str | None = None) -> dict[str, Any]:
    return {"view": ui_queries.datasets_view(conn, q=_empty(q)), "nav": "datasets"}


@html_router.get("/ui/datasets/{pk}")
@page("dataset.html")
def page_dataset(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": _found(ui_queries.dataset_view(conn, pk), "dataset"), "nav": "datasets"}


@html_router.get("/ui/alerts")
@page("alerts.html")
def page_alerts(conn: Any, session: sessions.Session, error: str | None = None, kind: str | None = None,
                dag_id: str | None = None, task_id: str | None = None) -> dict[str, Any]:
    return {"view": data_alerts(conn), "nav": "alerts", "error": error,
            "prefill": {"kind": kind or "task_failed", "dag_id": dag_id or "", "task_id": task_id or ""}}


@html_router.get("/ui/tokens")
@page("tokens.html")
def page_tokens(conn: Any, session: sessions.Session, error: str | None = None) -> dict[str, Any]:
    """Admin sessions only (not `--open`: a tokenless local visitor must not manage tokens)."""
    if session.scope != "admin":
        raise HTTPException(403, "managing tokens needs an admin token (log in with one)")
    return {"tokens": list_tokens(conn), "nav": "tokens", "error": error}


@html_router.post("/ui/tokens/{name}/revoke")
async def form_revoke_token(request: Request, name: str) -> Response:
    """Revoke a token; revoking the session's own token ends this session too (back to the login page)."""
    form = await request.form()
    try:
        session = await run_in_threadpool(ui_session, request)
    except LoginRequired:
        return RedirectResponse("/ui/login?next=/ui/tokens", status_code=303)
    _check_csrf(request, session, form)
    if session.scope != "admin":
        raise HTTPException(403, "managing tokens needs an admin token (log in with one)")
    try:
        with request.app.state.db.write() as conn:
            revoke_token(conn, name)
    except TokenError as exc:
        if "no live token" in str(exc):
            raise HTTPException(404, str(exc)) from None
        return _finish(request, RedirectResponse("/ui/tokens?" + urlencode({"error": str(exc)}), status_code=303))
    return _finish(request, RedirectResponse("/ui/tokens", status_code=303))


# ---------------------------------------------------------------- HTML forms (alerts)

async def _form_session(request: Request) -> tuple[sessions.Session | None, Any]:
    form = await request.form()
    try:
        session = await run_in_threadpool(ui_session, request)
    except LoginRequired:
        return None, form
    _check_csrf(request, session, form)
    _need_manage(session)
    return session, form


def _login_redirect() -> RedirectResponse:
    return RedirectResponse("/ui/login?next=/ui/alerts", status_code=303)


@html_router.post("/ui/alerts/rules")
async def form_create_rule(request: Request) -> Response:
    session, form = await _form_session(request)
    if session is None:
        return _login_redirect()
    body = {k: str(v) for k, v in form.items() if k != "csrf"}
    params = {k[len("p_"):]: v for k, v in body.items() if k.startswith("p_")}
    kind = body.get("kind")
    used = alert_rules.KINDS.get(kind or "", {}).get("params", ())
    rule_body = {k: v for k, v in body.items() if not k.startswith("p_")}
    rule_body["params"] = {k: v for k, v in params.items() if k in used}
    try:
        with request.app.state.db.write() as conn:
            rule = alert_rules.create_rule(conn, rule_body)
    except alert_rules.RuleError as exc:
        return _finish(request, RedirectResponse("/ui/alerts?" + urlencode({"error": str(exc)}), status_code=303))
    _rules_changed(request, rule["id"])
    return _finish(request, RedirectResponse(f"/ui/alerts#rule-{rule['id']}", status_code=303))


@html_router.post("/ui/alerts/rules/{pk}/toggle")
async def form_toggle_rule(request: Request, pk: str) -> Response:
    session, _form = await _form_session(request)
    if session is None:
        return _login_redirect()
    with request.app.state.db.write() as conn:
        rule = alert_rules.get_rule(conn, pk)
        if rule is None:
            raise HTTPException(404, "rule not found")
        alert_rules.update_rule(conn, pk, {"enabled": not rule["enabled"]})
    _rules_changed(request, pk)
    return _finish(request, RedirectResponse(f"/ui/alerts#rule-{pk}", status_code=303))


@html_router.post("/ui/alerts/rules/{pk}/delete")
async def form_delete_rule(request: Request, pk: str) -> Response:
    session, _form = await _form_session(request)
    if session is None:
        return _login_redirect()
    with request.app.state.db.write() as conn:
        alert_rules.delete_rule(conn, pk)
    return _finish(request, RedirectResponse("/ui/alerts", status_code=303))


@html_router.post("/ui/alerts/{pk}/resolve")
async def form_resolve_alert(request: Request, pk: str) -> Response:
    session, form = await _form_session(request)
    if session is None:
        return _login_redirect()
    with request.app.state.db.write() as conn:
        found = alert_rules.resolve_alert(conn, pk, f"ui ({session.scope})", str(form.get("note") or "") or None)
    _found(found, "alert")
    return _finish(request, RedirectResponse("/ui/alerts", status_code=303))


def _rules_changed(request: Request, pk: str | None) -> None:
    worker = getattr(request.app.state, "alerts", None)
    if worker is not None:
        if worker.base_url is None:
            worker.base_url = str(request.base_url).rstrip("/")
        worker.rules_changed(pk)


# ---------------------------------------------------------------- JSON twins

@api_router.get("/instances")
async def api_instances(request: Request) -> JSONBody:
    """Airflow instances with syncer health (the Instances page)."""
    return JSONBody(await run_in_threadpool(_read, request, ui_queries.instances_view))


@api_router.get("/dags")
async def api_dags(request: Request, instance: str | None = None, state: str | None = None,
                   window: str | None = Query(None, description="1h, 24h, 7d or 30d"),
                   since: str | None = None, until: str | None = None, q: str | None = None) -> JSONBody:
    """DAGs with their recent runs (state strip, durations) and open alert counts (the DAGs page)."""
    return JSONBody(await run_in_threadpool(_read, request, data_dags, instance, state, window, since, until, q))


@api_router.get("/dags/{dag_id}")
async def api_dag(request: Request, dag_id: str, instance: str | None = None, state: str | None = None,
                  window: str | None = None, since: str | None = None, until: str | None = None) -> JSONBody:
    """One DAG: runs, duration trend, task grid, alerts (the DAG page)."""
    return JSONBody(await run_in_threadpool(_read, request, data_dag, dag_id, instance, state, window, since, until))


@api_router.get("/dag-runs/{pk}")
async def api_dag_run(request: Request, pk: str) -> JSONBody:
    """A DAG run's task grid with states, durations, Gantt offsets and Spark app health."""
    return JSONBody(_found(await run_in_threadpool(_read, request, ui_queries.dag_run_view, pk), "DAG run"))


@api_router.get("/task-attempts/{pk}")
async def api_task_attempt(request: Request, pk: str) -> JSONBody:
    """A task attempt: params (secrets masked), error, log tail, metrics, datasets, Spark app summaries."""
    return JSONBody(_found(await run_in_threadpool(_read, request, ui_queries.task_attempt_view, pk),
                           "task attempt"))


@api_router.get("/spark-apps/{pk}")
async def api_spark_app(request: Request, pk: str) -> JSONBody:
    """A Spark app with timeline layout, stage analysis (slowest, spill, GC, uneven tasks), queries, failures."""
    return JSONBody(_found(await run_in_threadpool(_read, request, ui_queries.spark_app_view, pk), "Spark app"))


@api_router.get("/spark-apps/{pk}/stages/{stage_id}/{attempt_id}")
async def api_stage(request: Request, pk: str, stage_id: int, attempt_id: int) -> JSONBody:
    return JSONBody(await run_in_threadpool(_read, request, data_stage, pk, stage_id, attempt_id))


@api_router.get("/datasets")
async def api_datasets(request: Request, q: str | None = None) -> JSONBody:
    return JSONBody(await run_in_threadpool(_read, request, ui_queries.datasets_view, q=q))


@api_router.get("/datasets/{pk}")
async def api_dataset(request: Request, pk: str) -> JSONBody:
    """Who reads and writes a dataset, and its row counts over time."""
    return JSONBody(_found(await run_in_threadpool(_read, request, ui_queries.dataset_view, pk), "dataset"))


@api_router.get("/alerts")
async def api_alerts_page(request: Request) -> JSONBody:
    """Open alerts, recently resolved ones and the rules (the Alerts page)."""
    return JSONBody(await run_in_threadpool(_read, request, data_alerts))


__all__ = ["api_router", "engine", "html_router"]
