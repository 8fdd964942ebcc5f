"""The HTML pages under /ui: each reads its data from ui/queries.py (the same data its JSON twin in
routes/views.py answers) and renders its template; `page` does the rest for all of them."""

from __future__ import annotations

import functools
import inspect
import secrets
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from runlink.tracker.auth import list_tokens
from runlink.tracker.openlineage import pending as openlineage_pending
from runlink.tracker.ui import lineage_graph, queries
from runlink.tracker.ui import session as sessions
from runlink.tracker.ui.templating import render

router = APIRouter(include_in_schema=False)


def page(name: str):  # noqa: ANN201
    """Decorator of every page: the session (or the login form, coming back here), the page function in a worker
    thread with one read connection, then template `name` with what it returned (or the response it returned).

    FastAPI reads the route's parameters from the handler's signature: the page's own, less `conn` and
    `session` (supplied here), after `request`. So path and query parameters are checked before the login."""

    def wrap(fn):  # noqa: ANN001, ANN202
        async def handler(request: Request, **kwargs: Any) -> Response:
            try:
                session = await run_in_threadpool(sessions.ui_session, request)
            except sessions.LoginRequired:
                target = request.url.path + (("?" + request.url.query) if request.url.query else "")
                return RedirectResponse("/ui/login?" + urlencode({"next": target}), status_code=303)
            context = await run_in_threadpool(_call, request, fn, session, kwargs)
            if isinstance(context, Response):
                return sessions.finish(request, context)
            return sessions.finish(request, render(request, name, **context))

        handler = functools.wraps(fn)(handler)
        params = [p for p in inspect.signature(fn).parameters.values() if p.name not in ("conn", "session")]
        handler.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request), *params])
        return handler

    return wrap


def _call(request: Request, fn, session: sessions.Session, kwargs: dict[str, Any]) -> Any:  # noqa: ANN001
    with request.app.state.db.read() as conn:
        return fn(conn=conn, session=session, **kwargs)


def _empty(value: str | None) -> str | None:
    """A form's empty field is no filter."""
    return value or None


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/ui/dags", status_code=307)


@router.get("/ui")
@router.get("/ui/")
def ui_root() -> RedirectResponse:
    return RedirectResponse("/ui/dags", status_code=307)


def login_page(request: Request, status: int, target: str, error: str | None) -> Response:
    """The login form with a fresh login-CSRF nonce (echoed by the form, signed in a short-lived cookie)."""
    nonce = secrets.token_urlsafe(24)
    response = render(request, "login.html", status=status, next=target, error=error, login_csrf=nonce)
    sessions.set_cookie(request, response, sessions.LOGIN_COOKIE, sessions.sign_for(request, nonce), 1800)
    return response


@router.get("/ui/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return login_page(request, 200, sessions.safe_next(next), None)


@router.get("/ui/instances")
@page("instances.html")
def page_instances(conn: Any, session: sessions.Session, cursor: str | None = None) -> dict[str, Any]:
    return {"view": queries.instances_view(conn, _empty(cursor)), "nav": "instances",
            "lineage_waiting": openlineage_pending.counts(conn, openlineage_pending.default_ttl_s())}


@router.get("/ui/instances/{name}")
@page("instance.html")
def page_instance(conn: Any, session: sessions.Session, name: str) -> dict[str, Any]:
    return {"view": queries.found(queries.instance_view(conn, name), "Airflow instance"), "nav": "instances"}


@router.get("/ui/spark-apps")
@page("spark_apps.html")
def page_spark_apps(conn: Any, session: sessions.Session, q: str | None = None, state: str | None = None,
                    cursor: str | None = None) -> dict[str, Any]:
    return {"view": queries.spark_apps_view(conn, q=_empty(q), state=_empty(state), cursor=_empty(cursor)),
            "nav": "spark"}


@router.get("/ui/lineage")
@page("lineage.html")
def page_lineage(conn: Any, session: sessions.Session, dataset: str | None = None, dag_id: str | None = None,
                 task_id: str | None = None, depth: int = Query(4, ge=1, le=lineage_graph.MAX_DEPTH),
                 direction: str = "both") -> dict[str, Any]:
    view = lineage_graph.lineage_view(conn, dataset=_empty(dataset), dag_id=_empty(dag_id), task_id=_empty(task_id),
                                      depth=depth, direction=direction)
    return {"view": view, "nav": "lineage"}


@router.get("/ui/dags")
@page("dags.html")
def page_dags(conn: Any, session: sessions.Session, instance: str | None = None, state: str | None = None,
              window: str | None = None, since: str | None = None, until: str | None = None,
              q: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    view = queries.dags_page(conn, _empty(instance), _empty(state), _empty(window), _empty(since), _empty(until),
                             _empty(q), _empty(cursor))
    return {"view": view, "nav": "dags"}


@router.get("/ui/dags/{dag_id}")
@page("dag.html")
def page_dag(conn: Any, session: sessions.Session, dag_id: str, instance: str | None = None,
             state: str | None = None, window: str | None = None, since: str | None = None,
             until: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    view = queries.dag_page(conn, dag_id, _empty(instance), _empty(state), _empty(window), _empty(since),
                            _empty(until), _empty(cursor))
    return {"view": view, "nav": "dags"}


@router.get("/ui/dag-runs/{pk}")
@page("dag_run.html")
def page_dag_run(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": queries.found(queries.dag_run_view(conn, pk), "DAG run"), "nav": "dags"}


@router.get("/ui/task-attempts/{pk}")
@page("task_attempt.html")
def page_task_attempt(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": queries.found(queries.task_attempt_view(conn, pk), "task attempt"), "nav": "dags"}


@router.get("/ui/attempt")
@page("error.html")
def page_attempt_by_context(conn: Any, session: sessions.Session, dag_id: str = "", dag_run_id: str = "",
                            task_id: str = "", try_number: int | None = None, map_index: int = -1,
                            uid: str | None = None) -> RedirectResponse:
    """The Airflow UI's "runlink" extra link: Airflow names the attempt, the tracker finds its page (the login
    comes first, so the names are optional here and a link missing one is a 404, like an unknown attempt)."""
    pk = (queries.attempt_by_context(conn, dag_id, dag_run_id, task_id, try_number, map_index, _empty(uid))
          if dag_id and dag_run_id and task_id else None)
    return RedirectResponse(f"/ui/task-attempts/{quote(queries.found(pk, 'task attempt'), safe='')}",
                            status_code=303)


@router.get("/ui/spark-apps/{pk}")
@page("spark_app.html")
def page_spark_app(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": queries.found(queries.spark_app_view(conn, pk), "Spark app"), "nav": "dags"}


@router.get("/ui/spark-apps/{pk}/stages/{stage_id}/{attempt_id}")
@page("stage.html")
def page_stage(conn: Any, session: sessions.Session, pk: str, stage_id: int, attempt_id: int) -> dict[str, Any]:
    return {"view": queries.stage_page(conn, pk, stage_id, attempt_id), "nav": "dags"}


@router.get("/ui/datasets")
@page("datasets.html")
def page_datasets(conn: Any, session: sessions.Session, q: str | None = None,
                  cursor: str | None = None) -> dict[str, Any]:
    return {"view": queries.datasets_view(conn, q=_empty(q), cursor=_empty(cursor)), "nav": "datasets"}


@router.get("/ui/datasets/{pk}")
@page("dataset.html")
def page_dataset(conn: Any, session: sessions.Session, pk: str) -> dict[str, Any]:
    return {"view": queries.found(queries.dataset_view(conn, pk), "dataset"), "nav": "datasets"}


@router.get("/ui/alerts")
@page("alerts.html")
def page_alerts(conn: Any, session: sessions.Session, error: str | None = None, kind: str | None = None,
                dag_id: str | None = None, task_id: str | None = None, cursor: str | None = None) -> dict[str, Any]:
    return {"view": queries.alerts_page(conn, _empty(cursor)), "nav": "alerts", "error": error,
            "prefill": {"kind": kind or "task_failed", "dag_id": dag_id or "", "task_id": task_id or ""}}


@router.get("/ui/tokens")
@page("tokens.html")
def page_tokens(conn: Any, session: sessions.Session, error: str | None = None) -> dict[str, Any]:
    sessions.need_admin(session)
    return {"tokens": list_tokens(conn), "nav": "tokens", "error": error}
