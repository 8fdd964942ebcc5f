"""A task attempt against its own history: the diagnosis, the task's trends, and a DAG run's slowed or failed
attempts (read scope)."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from starlette.concurrency import run_in_threadpool

from runlink.tracker import diagnosis, trends
from runlink.tracker.auth import require
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("read"))], default_response_class=JSONBody)


def _read(request: Request, fn, *args, **kwargs):  # noqa: ANN001, ANN202
    with request.app.state.db.read() as conn:
        return fn(conn, *args, **kwargs)


@router.get("/task-attempts/{attempt_pk}/diagnosis")
async def get_diagnosis(request: Request, attempt_pk: str,
                        n: int = Query(diagnosis.DEFAULT_HISTORY, ge=1, le=trends.MAX_RUNS,
                                       description="earlier successful attempts compared with")) -> JSONBody:
    """The attempt against the last `n` successful attempts of its task: the duration change and the findings that
    explain it (ranked by the seconds they explain), a summary paragraph and a headline."""
    started = time.perf_counter()
    found, cpu_ms = await run_in_threadpool(_cpu_timed, request, diagnosis.diagnose, attempt_pk, n)
    if found is None:
        raise HTTPException(404, "task attempt not found")
    took_ms = (time.perf_counter() - started) * 1000
    return JSONBody(found, headers={"Server-Timing": f"diagnosis;dur={took_ms:.1f}, cpu;dur={cpu_ms:.1f}"})


def _cpu_timed(request: Request, fn, *args):  # noqa: ANN001, ANN202
    """`_read` and the CPU time its thread spent (a figure the machine's other load does not stretch)."""
    started = time.thread_time()
    found = _read(request, fn, *args)
    return found, (time.thread_time() - started) * 1000


@router.get("/task-attempts/{attempt_pk}/trends")
async def get_trends(request: Request, attempt_pk: str,
                     limit: int = Query(30, ge=1, le=trends.MAX_RUNS, description="attempts, up to this one")
                     ) -> JSONBody:
    """The attempt's task over its runs: duration, every user metric and the Spark totals, one series each."""
    found = await run_in_threadpool(_read, request, trends.task_trends, attempt_pk, limit)
    if found is None:
        raise HTTPException(404, "task attempt not found")
    return JSONBody(found)


@router.get("/dag-runs/{run_pk}/diagnosis")
async def get_run_diagnosis(request: Request, run_pk: str,
                            n: int = Query(diagnosis.DEFAULT_HISTORY, ge=1, le=trends.MAX_RUNS)) -> JSONBody:
    """The headline of each attempt of the run that failed or ran slower than its history."""
    return JSONBody({"items": await run_in_threadpool(_read, request, diagnosis.run_diagnoses, run_pk, n)})
