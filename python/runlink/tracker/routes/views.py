"""The JSON twin of every UI page: /api/v1/views/... (bearer token, read scope) answers exactly the data the page
renders (ui/queries.py), so anything seen in the UI can be scripted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from runlink.tracker.auth import require
from runlink.tracker.routes import JSONBody
from runlink.tracker.ui import lineage_graph, queries
from runlink.tracker.ui.queries import found

router = APIRouter(prefix="/api/v1/views", dependencies=[Depends(require("read"))], default_response_class=JSONBody,
                   tags=["views"])


def _read(request: Request, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    with request.app.state.db.read() as conn:
        return fn(conn, *args, **kwargs)


@router.get("/instances")
async def api_instances(request: Request, cursor: str | None = None,
                        limit: int = Query(queries.INSTANCES_PAGE, ge=1, le=500)) -> JSONBody:
    """Airflow instances with syncer health (the Instances page), a keyset page: `next`/`previous` as `cursor`."""
    return JSONBody(await run_in_threadpool(_read, request, queries.instances_view, cursor, limit))


@router.get("/instances/{name}")
async def api_instance(request: Request, name: str) -> JSONBody:
    """One Airflow instance (by name, uid or alias): syncer health, uid and aliases, DAGs, recent runs."""
    return JSONBody(found(await run_in_threadpool(_read, request, queries.instance_view, name), "Airflow instance"))


@router.get("/spark-apps")
async def api_spark_apps(request: Request, q: str | None = Query(None, description="part of the app id or name"),
                         state: str | None = None, cursor: str | None = None,
                         limit: int = Query(queries.SPARK_APPS_PAGE, ge=1, le=500)) -> JSONBody:
    """Spark applications, newest first, a keyset page (the Spark applications page): pass `next` (or
    `previous`) back as `cursor`."""
    return JSONBody(await run_in_threadpool(_read, request, queries.spark_apps_view, q=q, state=state, cursor=cursor,
                                            limit=limit))


@router.get("/lineage")
async def api_lineage(request: Request, dataset: str | None = None, dag_id: str | None = None,
                      task_id: str | None = None, depth: int = Query(4, ge=1, le=lineage_graph.MAX_DEPTH),
                      direction: str = Query("both", description="both, upstream or downstream")) -> JSONBody:
    """Datasets and the tasks that read and write them, around a dataset or a task (the lineage graph page)."""
    return JSONBody(await run_in_threadpool(_read, request, lineage_graph.lineage_view, dataset=dataset,
                                            dag_id=dag_id, task_id=task_id, depth=depth, direction=direction))


@router.get("/dags")
async def api_dags(request: Request, instance: str | None = None, state: str | None = None,
                   window: str | None = Query(None, description="1h, 24h, 7d or 30d"),
                   since: str | None = None, until: str | None = None, q: str | None = None,
                   cursor: str | None = None, limit: int = Query(queries.DAGS_PAGE, ge=1, le=500)) -> JSONBody:
    """DAGs by dag_id with their recent runs (state strip, durations) and open alert counts (the DAGs page), a
    keyset page of `limit` dag_ids: pass `next` (or `previous`) back as `cursor`."""
    return JSONBody(await run_in_threadpool(_read, request, queries.dags_page, instance, state, window, since, until,
                                            q, cursor, limit))


@router.get("/dags/{dag_id}")
async def api_dag(request: Request, dag_id: str, instance: str | None = None, state: str | None = None,
                  window: str | None = None, since: str | None = None, until: str | None = None,
                  cursor: str | None = None, limit: int = Query(100, ge=1, le=500)) -> JSONBody:
    """One DAG: a keyset page of `limit` runs (`next`/`previous` as `cursor`), duration trend, task grid, alerts
    (the DAG page)."""
    return JSONBody(await run_in_threadpool(_read, request, queries.dag_page, dag_id, instance, state, window, since,
                                            until, cursor, limit))


@router.get("/dag-runs/{pk}")
async def api_dag_run(request: Request, pk: str) -> JSONBody:
    """A DAG run's task grid with states, durations, Gantt offsets and Spark app health."""
    return JSONBody(found(await run_in_threadpool(_read, request, queries.dag_run_view, pk), "DAG run"))


@router.get("/task-attempts/{pk}")
async def api_task_attempt(request: Request, pk: str) -> JSONBody:
    """A task attempt: params (secrets masked), error, log tail, metrics, datasets, Spark app summaries."""
    return JSONBody(found(await run_in_threadpool(_read, request, queries.task_attempt_view, pk), "task attempt"))


@router.get("/spark-apps/{pk}")
async def api_spark_app(request: Request, pk: str) -> JSONBody:
    """A Spark app with timeline layout, stage analysis (slowest, spill, GC, uneven tasks), queries, failures."""
    return JSONBody(found(await run_in_threadpool(_read, request, queries.spark_app_view, pk), "Spark app"))


@router.get("/spark-apps/{pk}/stages/{stage_id}/{attempt_id}")
async def api_stage(request: Request, pk: str, stage_id: int, attempt_id: int) -> JSONBody:
    return JSONBody(await run_in_threadpool(_read, request, queries.stage_page, pk, stage_id, attempt_id))


@router.get("/datasets")
async def api_datasets(request: Request, q: str | None = None, cursor: str | None = None,
                       limit: int = Query(queries.DATASETS_PAGE, ge=1, le=500)) -> JSONBody:
    """Datasets by name with their read/write counts, a keyset page: pass `next` (or `previous`) as `cursor`."""
    return JSONBody(await run_in_threadpool(_read, request, queries.datasets_view, q=q, cursor=cursor, limit=limit))


@router.get("/datasets/{pk}")
async def api_dataset(request: Request, pk: str) -> JSONBody:
    """Who reads and writes a dataset, and its row counts over time."""
    return JSONBody(found(await run_in_threadpool(_read, request, queries.dataset_view, pk), "dataset"))


@router.get("/alerts")
async def api_alerts_page(request: Request, cursor: str | None = None) -> JSONBody:
    """Open alerts, a keyset page of resolved ones (`next`/`previous` as `cursor`) and the rules (the Alerts
    page)."""
    return JSONBody(await run_in_threadpool(_read, request, queries.alerts_page, cursor))
