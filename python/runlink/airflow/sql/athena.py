"""Athena (`AthenaHook`): `run_query` submits (`start_query_execution` answers the `QueryExecutionId`), and every
status check reads `get_query_execution` through `get_query_info`, whose terminal answer gives the state, the
error (`Status.AthenaError.ErrorMessage`, else `StateChangeReason`), `Statistics.TotalExecutionTimeInMillis` and
`DataScannedInBytes`. Athena reports no row count there (only `GetQueryRuntimeStatistics`, which the hook never
calls, and runlink adds no API call to the task)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runlink.airflow.injection.base import Undo
from runlink.airflow.sql.patching import patch_hook_methods
from runlink.airflow.sql.recorder import StatementRecorder, Target
from runlink.airflow.sql.submitted import Submission, Submitted

MODULE = "airflow.providers.amazon.aws.hooks.athena"
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "CANCELLED"})


def patch(recorder: StatementRecorder, undo: Undo, submitted: Submitted) -> None:
    patch_hook_methods(undo, MODULE, "AthenaHook", {
        "run_query": lambda original: _run_query(original, recorder, submitted),
        "get_query_info": lambda original: _query_info(original, recorder, submitted),
    })


def _region(hook: Any) -> str | None:
    try:
        region = hook.conn_region_name
    except Exception:  # noqa: BLE001 - no region configured: no host
        return None
    return f"athena.{region}.amazonaws.com" if region else None


def _run_query(original: Callable[..., Any], recorder: StatementRecorder,
               submitted: Submitted) -> Callable[..., Any]:
    def run_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        query = kwargs.get("query", args[0] if args else None)
        query_context = kwargs.get("query_context", args[1] if len(args) > 1 else None)
        wall, perf = time.time(), time.perf_counter()
        database = query_context.get("Database") if isinstance(query_context, dict) else None
        try:
            query_execution_id = original(self, *args, **kwargs)
        except BaseException as exc:
            recorder.record(Target("athena", _region(self), database), query, wall, time.perf_counter() - perf,
                            error=exc, hook=type(self).__name__)
            raise
        if isinstance(query_execution_id, str):
            submitted.add(query_execution_id, Submission(Target("athena", _region(self), database), query, wall,
                                                         perf, type(self).__name__))
        return query_execution_id

    return run_query


def _query_info(original: Callable[..., Any], recorder: StatementRecorder,
                submitted: Submitted) -> Callable[..., Any]:
    def get_query_info(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        try:
            _finished(response, recorder, submitted)
        except Exception:  # noqa: BLE001 - an unexpected response shape: nothing recorded, the task goes on
            pass
        return response

    return get_query_info


def _finished(response: dict[str, Any], recorder: StatementRecorder, submitted: Submitted) -> None:
    execution = response.get("QueryExecution") or {}
    status = execution.get("Status") or {}
    state = status.get("State")
    if state not in TERMINAL:
        return
    s = submitted.take(execution.get("QueryExecutionId"))
    if s is None:
        return
    stats = execution.get("Statistics") or {}
    millis = stats.get("TotalExecutionTimeInMillis")
    submitted_at = status.get("SubmissionDateTime")
    error = None
    if state != "SUCCEEDED":
        error = ((status.get("AthenaError") or {}).get("ErrorMessage") or status.get("StateChangeReason")
                 or f"query {state.lower()}")
    database = (execution.get("QueryExecutionContext") or {}).get("Database") or s.target.database
    recorder.record(
        Target("athena", s.target.host, database), execution.get("Query") or s.sql,
        submitted_at.timestamp() if isinstance(submitted_at, datetime) else s.wall,
        millis / 1000.0 if isinstance(millis, int | float) else time.perf_counter() - s.perf,
        error=error, query_id=execution.get("QueryExecutionId"), hook=s.hook, state=state.lower(),
        bytes_scanned=stats.get("DataScannedInBytes"),
    )
