"""BigQuery (`BigQueryHook.insert_job`): the job is inserted, then waited for by `QueryJob.result()` (inside
`insert_job`, or by the operator after `nowait=True`). The finished job resource gives the job id, the state and
`status.errorResult`, `statistics.startTime/endTime` (ms), `statistics.query.numDmlAffectedRows` (DML) or the
last query plan stage's `recordsWritten` (a SELECT's rows), and `totalBytesProcessed`. Only query jobs are
statements; load, copy and extract jobs are not recorded. For BigQuery the target's host is the project and its
database the job's location (a job has no database): a console link needs both."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from runlink.airflow.injection.base import Undo
from runlink.airflow.sql.patching import loaded, patch_method
from runlink.airflow.sql.recorder import StatementRecorder, Target
from runlink.airflow.sql.submitted import Submission, Submitted

MODULE = "airflow.providers.google.cloud.hooks.bigquery"
JOB_MODULE = "google.cloud.bigquery.job.query"
_inside = threading.local()


def patch(recorder: StatementRecorder, undo: Undo, submitted: Submitted) -> None:
    module, jobs = loaded(MODULE), loaded(JOB_MODULE)
    if module is None or jobs is None:
        return
    patch_method(undo, module.BigQueryHook, "insert_job",
                 lambda original: _insert_job(original, recorder, submitted))
    patch_method(undo, jobs.QueryJob, "result", lambda original: _result(original, recorder, submitted))


def _insert_job(original: Callable[..., Any], recorder: StatementRecorder,
                submitted: Submitted) -> Callable[..., Any]:
    def insert_job(self: Any, *args: Any, **kwargs: Any) -> Any:
        # called exactly as the caller did: the hook's decorator refuses positional arguments
        configuration = kwargs.get("configuration", args[0] if args else None)
        query = configuration.get("query") if isinstance(configuration, dict) else None
        if not isinstance(query, dict):
            return original(self, *args, **kwargs)
        wall, perf = time.time(), time.perf_counter()
        _inside.hook = type(self).__name__
        try:
            job = original(self, *args, **kwargs)
        except BaseException as exc:
            if not getattr(_inside, "recorded", False):  # refused before the job ran (bad request, auth)
                target = Target("bigquery", getattr(self, "project_id", None), kwargs.get("location"))
                recorder.record(target, query.get("query"), wall, time.perf_counter() - perf, error=exc,
                                query_id=kwargs.get("job_id"), hook=type(self).__name__)
            raise
        finally:
            _inside.hook = None
            _inside.recorded = False
        if job is not None:
            if getattr(job, "state", None) == "DONE":
                _record_job(job, recorder, submitted, type(self).__name__, wall, perf)
            elif getattr(job, "job_id", None):
                submitted.add(job.job_id, Submission(_job_target(job), query.get("query"), wall, perf,
                                                     type(self).__name__))
        return job

    return insert_job


def _result(original: Callable[..., Any], recorder: StatementRecorder, submitted: Submitted) -> Callable[..., Any]:
    def result(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            hook = getattr(_inside, "hook", None)
            pending = submitted.take(self.job_id) if hook is None else None
            if hook is not None or pending is not None:
                _inside.recorded = hook is not None
                _record_job(self, recorder, submitted, hook or pending.hook, pending.wall if pending else None,
                            pending.perf if pending else None, taken=pending is not None)

    return result


def _job_target(job: Any) -> Target:
    return Target("bigquery", getattr(job, "project", None), getattr(job, "location", None))


def _record_job(job: Any, recorder: StatementRecorder, submitted: Submitted, hook: str, wall: float | None,
                perf: float | None, taken: bool = False) -> None:
    """Record a finished query job from its resource (`job._properties`: the REST API's Job, as returned)."""
    try:
        if not taken and not submitted.mark(job.job_id):
            return
        resource = job._properties
        status = resource.get("status") or {}
        stats = resource.get("statistics") or {}
        query_stats = stats.get("query") or {}
        start_ms, end_ms = _int(stats.get("startTime")), _int(stats.get("endTime"))
        rows = _int(query_stats.get("numDmlAffectedRows"))
        if rows is None and query_stats.get("queryPlan"):
            rows = _int(query_stats["queryPlan"][-1].get("recordsWritten"))
        error = status.get("errorResult")
        recorder.record(
            _job_target(job), ((resource.get("configuration") or {}).get("query") or {}).get("query"),
            start_ms / 1000.0 if start_ms is not None else (wall or time.time()),
            (end_ms - start_ms) / 1000.0 if start_ms is not None and end_ms is not None
            else (time.perf_counter() - perf if perf is not None else None),
            error=(error.get("message") or error.get("reason") or "job failed") if error else None,
            rows=rows, query_id=job.job_id, hook=hook, state=str(status.get("state") or "").lower() or None,
            bytes_scanned=_int(query_stats.get("totalBytesProcessed")),
        )
    except Exception:  # noqa: BLE001 - an unexpected resource: nothing recorded, the task goes on
        pass


def _int(value: Any) -> int | None:
    """The REST API sends int64 as strings."""
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None
