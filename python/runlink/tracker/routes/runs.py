"""Query API: DAG runs (list, tree), task attempts, Spark apps."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from runlink.context import ContextError
from runlink.context import stored_instant as instant
from runlink.tracker import queries
from runlink.tracker.auth import require
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("read"))], default_response_class=JSONBody)


def _read(request: Request, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    with request.app.state.db.read() as conn:
        return fn(conn, *args, **kwargs)


@router.get("/dag-runs")
async def list_dag_runs(
    request: Request,
    instance: str | None = None,
    dag_id: str | None = None,
    run_id: str | None = None,
    state: str | None = None,
    since: str | None = Query(None, description="ISO-8601: runs whose logical date (else start) is at or after"),
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = None,
) -> JSONBody:
    """DAG runs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    try:
        since_instant = instant(since) if since else None
    except ContextError:
        raise HTTPException(422, {"message": "since: not an ISO-8601 instant", "field": "since"}) from None
    try:
        page = await run_in_threadpool(
            _read, request, queries.list_runs, instance=instance, dag_id=dag_id, run_id=run_id, state=state,
            since=since_instant, limit=limit, cursor=cursor,
        )
    except ValueError:
        raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None
    return JSONBody(page)


def _found(value, what: str):  # noqa: ANN001, ANN202
    if value is None:
        raise HTTPException(404, f"{what} not found")
    return JSONBody(value)


@router.get("/dag-runs/{run_pk}")
async def get_dag_run(request: Request, run_pk: str) -> JSONBody:
    """The whole tree of one DAG run."""
    return _found(await run_in_threadpool(_read, request, queries.run_tree, run_pk, raw_json=True), "DAG run")


@router.get("/task-attempts/{attempt_pk}")
async def get_task_attempt(request: Request, attempt_pk: str) -> JSONBody:
    attempt = await run_in_threadpool(_read, request, queries.task_attempt, attempt_pk, raw_json=True)
    return _found(attempt, "task attempt")


@router.get("/spark-apps/{app_pk}")
async def get_spark_app(request: Request, app_pk: str) -> JSONBody:
    return _found(await run_in_threadpool(_read, request, queries.spark_app, app_pk, raw_json=True), "Spark app")
