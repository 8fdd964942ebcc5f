"""The Airflow listener: task attempt and DAG run events, and the execute() wrapper that injects the context.

Registered by the plugin (`airflow.plugins` entry point), so no DAG changes. Hook bodies are guarded (a runlink
bug logs a warning and the task goes on) and cheap: events go to the asynchronous client; the only wait is the
bounded flush when an attempt ends (the task process exits right after, through `os._exit` on Airflow 3).

Where the hooks run:
- task hooks run in the task process (and, on Airflow 3, in the API server when a user marks a task instance
  success/failed/skipped in the UI: those calls have no open attempt here and are reported as state changes);
- DAG run hooks run in the scheduler (and in `dag.test()`). When a DAG run ends, the task instances that ended
  without ever running in a task process (skipped by a branch or a short-circuit, upstream_failed, removed) are
  reported from there: no task hook fires for them (Airflow's listener docs point to the DAG run hooks).
A task killed by the scheduler or a worker lost never reaches a task hook: the syncer (`runlink monitor`) reports
what Airflow's database says about it.
"""

from __future__ import annotations

import collections
import functools
import logging
import os
import socket
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from airflow.listeners import hookimpl

log = logging.getLogger("runlink.airflow")

AGENT = "airflow"
_attempts: dict[tuple, _Attempt] = {}
#: attempts this process ended lately: a later hook for the same attempt (2.11 and 3.x both call the skipped
#: hook after execute() raised AirflowSkipException) is not a state change made elsewhere
_ended: collections.OrderedDict[tuple, str] = collections.OrderedDict()
_ENDED_KEPT = 256
_lock = threading.Lock()


class _Attempt:
    """One execution of a task attempt in this process (a resumed deferral is a second execution)."""

    __slots__ = ("key", "raw", "started", "start_wall", "task", "ended", "result", "outcome", "capture", "ti")

    def __init__(self, key: tuple, raw: dict[str, str], task: Any, ti: Any) -> None:
        self.key = key
        self.raw = raw
        self.started = time.monotonic()
        self.start_wall = datetime.now(timezone.utc)
        self.task = task
        self.ti = ti
        self.ended = False
        self.result: Any = None
        self.outcome: str | None = None
        self.capture: Any = None


def _key(ti: Any) -> tuple:
    return (
        getattr(ti, "dag_id", None),
        getattr(ti, "run_id", None),
        getattr(ti, "task_id", None),
        getattr(ti, "map_index", -1),
        getattr(ti, "try_number", None),
    )


def _emit(type_: str, payload: dict[str, Any], raw: dict[str, str], time_: str | None = None) -> None:
    from runlink.delivery import get_client
    from runlink.protocol.events import make_event

    get_client().emit(make_event(type_, payload, context=raw, agent=AGENT, time=time_))


def _process_goes_on() -> bool:
    """True when the task ran inside a process that lives on after it: `dag.test()` on Airflow 3 (the in-process
    supervisor). Delivery then goes on in the background and the client's atexit flush covers the exit, so the end
    of the attempt need not wait. A real task process ends with `os._exit` right after the task: there it waits."""
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    comms = getattr(runner, "SUPERVISOR_COMMS", None) if runner is not None else None
    return type(comms).__name__ == "InProcessSupervisorComms"


def _flush(timeout: float) -> None:
    if _process_goes_on():
        return
    try:
        from runlink import delivery

        client = delivery._client
        if client is not None:
            client.flush(timeout)
    except Exception:  # noqa: BLE001
        log.debug("runlink: flush failed", exc_info=True)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    from runlink.instants import format_instant

    if isinstance(value, datetime):
        return format_instant(value)
    return str(value)


def _state_name(value: Any) -> str | None:
    if value is None:
        return None
    return str(getattr(value, "value", value))


def _operator_name(task: Any) -> str | None:
    if task is None:
        return None
    klass = type(task)
    name = getattr(task, "task_type", None) or klass.__name__
    if name in ("_PythonDecoratedOperator", "DecoratedOperator") or name.startswith("_"):
        name = klass.__name__
    module = klass.__module__
    return f"{module}.{name}" if module else name


def _settings() -> Any:
    from runlink.airflow.settings import get_settings

    return get_settings()


def _tracked(ti: Any, task: Any) -> bool:
    from runlink.airflow.settings import opted_out

    settings = _settings()
    if settings.task_excluded(getattr(ti, "dag_id", None), getattr(ti, "task_id", None)):
        return False
    return not (task is not None and opted_out(task))


def _resumed(ti: Any) -> bool:
    server = getattr(ti, "_ti_context_from_server", None)
    if server is not None:
        return bool(getattr(server, "next_method", None))
    return bool(getattr(ti, "next_method", None))


# -- task attempts ---------------------------------------------------------------------------------------


def _start(ti: Any) -> None:
    from runlink.airflow import capture
    from runlink.airflow.task_context import raw_context

    task = getattr(ti, "task", None)
    if not _tracked(ti, task):
        return
    settings = _settings()
    raw = raw_context(ti, uid=settings.uid)
    attempt = _Attempt(_key(ti), raw, task, ti)
    with _lock:
        _attempts[attempt.key] = attempt
    from runlink.config import load

    token = load().token
    payload: dict[str, Any] = {
        "state": "resumed" if _resumed(ti) else "running",
        "start_date": _iso(getattr(ti, "start_date", None) or attempt.start_wall),
        "operator": _operator_name(task),
        "hostname": getattr(ti, "hostname", None) or socket.gethostname(),
        "pid": os.getpid(),
        "pool": getattr(ti, "pool", None) or getattr(task, "pool", None),
        "queue": getattr(ti, "queue", None) or getattr(task, "queue", None),
        "max_tries": getattr(ti, "max_tries", None),
    }
    if task is not None:
        payload["params"] = capture.rendered_params(task, token)
        if getattr(ti, "max_tries", None) is None and getattr(task, "retries", None) is not None:
            payload["max_tries"] = int(task.retries)
        if settings.capture_source:
            payload["source_code"] = capture.source_of(task)
    _emit("task_attempt.start", {k: v for k, v in payload.items() if v is not None}, raw)
    if settings.capture_logs:
        attempt.capture = capture.LogCapture(settings.log_bytes)
        attempt.capture.start()
    if task is not None:
        _wrap_execute(task, attempt, settings)


def _wrap_execute(task: Any, attempt: _Attempt, settings: Any) -> None:
    """Wrap this operator instance's execute/resume_execution: inject, remember the result, undo afterwards.

    The wrapper reads the current attempt from a holder: on 2.11, `dag.test()` runs a resumed deferral on the same
    operator object, still wrapped from the first execution, which must report to the new one.
    """
    for name in ("execute", "resume_execution"):
        original = getattr(task, name, None)
        if original is None:
            continue
        holder = getattr(original, "_runlink_holder", None)
        if holder is not None:
            holder.update(attempt=attempt, settings=settings)
            continue

        def make(original: Any, holder: dict[str, Any]) -> Any:
            @functools.wraps(original)
            def wrapper(*args: Any, **kwargs: Any) -> Any:
                current: _Attempt = holder["attempt"]
                undo = None
                try:
                    if holder["settings"].inject:
                        from runlink.airflow.injection import apply

                        undo = apply(task, current.raw, holder["settings"])
                except Exception:  # noqa: BLE001
                    log.warning("runlink: injection failed", exc_info=True)
                sql_undo = _sql_tracking(current, holder["settings"])
                try:
                    result = original(*args, **kwargs)
                except BaseException as exc:
                    _guarded(_after_exception, current, exc)
                    raise
                finally:
                    for done in (undo, sql_undo):
                        if done is None:
                            continue
                        try:
                            done()
                        except Exception:  # noqa: BLE001
                            log.warning("runlink: could not undo the injection", exc_info=True)
                current.result = result
                return result

            wrapper._runlink_holder = holder  # type: ignore[attr-defined]
            return wrapper

        try:
            object.__setattr__(task, name, make(original, {"attempt": attempt, "settings": settings}))
        except Exception:  # noqa: BLE001
            log.debug("runlink: cannot wrap %s.%s", type(task).__name__, name, exc_info=True)


def _sql_tracking(attempt: _Attempt, settings: Any) -> Any:
    """Record the SQL hooks' statements under this attempt while execute() runs (the undo puts them back)."""
    try:
        from runlink.airflow.sql import install

        return install(attempt.raw, settings)
    except Exception:  # noqa: BLE001
        log.warning("runlink: SQL statement tracking failed", exc_info=True)
        return None


def _after_exception(attempt: _Attempt, exc: BaseException) -> None:
    """Deferral and skip may not reach a listener hook (deferral never does; skip does not on 2.11)."""
    names = {k.__name__ for k in type(exc).__mro__}
    if "TaskDeferred" in names:
        _end(attempt, "deferred", None)
    elif "AirflowSkipException" in names:
        attempt.outcome = "skipped"
        _end(attempt, "skipped", None)


def _end(attempt: _Attempt | None, state: str, error: Any, ti: Any = None) -> None:
    from runlink.airflow import capture

    if attempt is None:
        # a state change made outside the task process (UI, API): report it as such
        if ti is None or not _tracked(ti, getattr(ti, "task", None)):
            return
        with _lock:
            if _ended.get(_key(ti)) == state:
                return
        from runlink.airflow.task_context import raw_context

        raw = raw_context(ti, uid=_settings().uid)
        payload = {
            "state": state,
            "end_date": _iso(getattr(ti, "end_date", None) or datetime.now(timezone.utc)),
            "error": capture.error_of(error),
        }
        _emit("task_attempt.end", {k: v for k, v in payload.items() if v is not None}, raw)
        return
    if attempt.ended:
        return
    attempt.ended = True
    with _lock:
        _attempts.pop(attempt.key, None)
        _ended[attempt.key] = state
        while len(_ended) > _ENDED_KEPT:
            _ended.popitem(last=False)
    settings = _settings()
    ti = attempt.ti
    start, end, duration = _attempt_times(attempt)
    payload: dict[str, Any] = {
        "state": state,
        "start_date": _iso(start),
        "end_date": _iso(end),
        "duration_s": duration,
        "operator": _operator_name(attempt.task),
        "error": capture.error_of(error),
    }
    if settings.capture_return_value and state in ("success", "skipped"):
        payload["return_value"] = capture.return_value_text(attempt.result)
    _emit("task_attempt.end", {k: v for k, v in payload.items() if v is not None}, attempt.raw)
    if attempt.capture is not None:
        attempt.capture.close()
        for index, part in enumerate(attempt.capture.parts()):
            _emit("log", {**part, "seq": index}, attempt.raw)
    del ti
    _flush(settings.flush_timeout_s)


def _aware(value: Any) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _attempt_times(attempt: _Attempt) -> tuple[datetime, datetime, float]:
    """The attempt's start, end and duration as Airflow records them (TI.start_date, TI.end_date, TI.duration =
    end - start), so the plugin and the syncer agree.

    Airflow's start_date is set when the try became running, before the task process parsed the DAG file; the
    listener's running hook comes after that (seconds later on a loaded machine), so timing from the hook measured
    a fraction of Airflow's duration. Airflow sets end_date before the success/failure hooks (3.x and 2.11); where
    it has not yet (a skip or deferral seen inside execute()), or holds an older try's value, it is now.
    """
    ti = attempt.ti
    now = datetime.now(timezone.utc)
    start = _aware(getattr(ti, "start_date", None))
    end = _aware(getattr(ti, "end_date", None))
    if end is not None and end < (start or attempt.start_wall):
        end = None
    if start is None:
        return attempt.start_wall, end or now, round(time.monotonic() - attempt.started, 6)
    end = end or now
    return start, end, round((end - start).total_seconds(), 6)


def _guarded(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - never fail or slow the task because of runlink
        log.warning("runlink: listener error in %s", getattr(fn, "__name__", fn), exc_info=True)


def _attempt_of(ti: Any) -> _Attempt | None:
    with _lock:
        return _attempts.get(_key(ti))


def _failed(ti: Any, error: Any) -> None:
    state = _state_name(getattr(ti, "state", None))
    if state not in ("up_for_retry", "failed"):
        state = "failed"
    _end(_attempt_of(ti), state, error, ti)


def _success(ti: Any) -> None:
    attempt = _attempt_of(ti)
    state = "skipped" if attempt is not None and attempt.outcome == "skipped" else "success"
    _end(attempt, state, None, ti)


def _stopping() -> None:
    """Airflow 3 task runner end: close attempts no hook closed (deferred, rescheduled, awaiting input)."""
    with _lock:
        open_attempts = list(_attempts.values())
    for attempt in open_attempts:
        if attempt.ti is None or getattr(attempt.ti, "state", None) is None:
            continue
        _end(attempt, _state_name(attempt.ti.state) or "unknown", None)


# -- DAG runs ------------------------------------------------------------------------------------------


#: states a task instance can reach without running in a task process (so without any task hook)
NEVER_RAN_STATES = frozenset({"skipped", "upstream_failed", "removed"})


def _run_context(dag_run: Any, uid: str) -> dict[str, str]:
    from runlink.airflow.task_context import isoformat_text

    raw = {"dag_id": getattr(dag_run, "dag_id", None), "dag_run_id": getattr(dag_run, "run_id", None), "uid": uid}
    logical = getattr(dag_run, "logical_date", None)
    if logical is not None:
        raw["execution_date"] = isoformat_text(logical)
    return {k: str(v) for k, v in raw.items() if v is not None}


def _never_ran(dag_run: Any, raw: dict[str, str], settings: Any) -> None:
    """Report the task instances of an ended DAG run that no task process reported (see the module docstring).

    DAG run hooks run where the metadata database is at hand (scheduler, API server, `dag.test()`): one query
    for the few columns needed and only those states, through the DAG run's own session when it is attached to
    one (2.11), else a short session of our own (3.x calls the hook on a detached DAG run).
    """
    from airflow.models.taskinstance import TaskInstance as TI
    from sqlalchemy import select
    from sqlalchemy.orm import object_session

    query = select(TI.task_id, TI.map_index, TI.try_number, TI.state, TI.start_date, TI.end_date).where(
        TI.dag_id == dag_run.dag_id, TI.run_id == dag_run.run_id, TI.state.in_(sorted(NEVER_RAN_STATES)))
    session = object_session(dag_run)
    if session is not None:
        rows = session.execute(query).all()
    else:
        from airflow.utils.session import create_session

        with create_session() as own:
            rows = own.execute(query).all()
    for task_id, map_index, try_number, state, start_date, end_date in rows:
        if settings.task_excluded(dag_run.dag_id, task_id):
            continue
        context = {**raw, "task_id": str(task_id), "map_index": str(-1 if map_index is None else map_index),
                   "try_number": str(try_number or 0)}
        payload = {"state": _state_name(state), "start_date": _iso(start_date), "end_date": _iso(end_date)}
        _emit("task_attempt.state", {k: v for k, v in payload.items() if v is not None}, context)


def _dag_run_event(dag_run: Any, type_: str, state: str) -> None:
    """DAG run start/end. No flush here: the scheduler lives on (its client delivers in the background, and
    `dag.test()` exits normally, through the client's atexit flush); a flush would stall the scheduler loop."""
    from runlink.airflow.capture import json_safe, redact

    settings = _settings()
    dag_id = getattr(dag_run, "dag_id", None)
    if settings.dag_excluded(dag_id):
        return
    raw = _run_context(dag_run, settings.uid)
    payload = {
        "state": state,
        "start_date": _iso(getattr(dag_run, "start_date", None)),
        "end_date": _iso(getattr(dag_run, "end_date", None)) if type_ == "dag_run.end" else None,
        "run_type": _state_name(getattr(dag_run, "run_type", None)),
        "conf": json_safe(redact(getattr(dag_run, "conf", None) or {})),
        "data_interval_start": _iso(getattr(dag_run, "data_interval_start", None)),
        "data_interval_end": _iso(getattr(dag_run, "data_interval_end", None)),
        "triggered_by": _state_name(getattr(dag_run, "triggered_by", None)),
    }
    _emit(type_, {k: v for k, v in payload.items() if v is not None}, raw)
    if type_ == "dag_run.end":
        _guarded(_never_ran, dag_run, raw, settings)


class RunlinkListener:
    """pluggy hook implementations; the signatures take the subset of arguments both Airflow 3 and 2.11 pass."""

    @hookimpl
    def on_task_instance_running(self, previous_state: Any, task_instance: Any) -> None:
        _guarded(_start, task_instance)

    @hookimpl
    def on_task_instance_success(self, previous_state: Any, task_instance: Any) -> None:
        _guarded(_success, task_instance)

    @hookimpl
    def on_task_instance_failed(self, previous_state: Any, task_instance: Any, error: Any) -> None:
        _guarded(_failed, task_instance, error)

    @hookimpl
    def on_task_instance_skipped(self, previous_state: Any, task_instance: Any) -> None:
        _guarded(lambda ti: _end(_attempt_of(ti), "skipped", None, ti), task_instance)

    @hookimpl
    def before_stopping(self, component: Any) -> None:
        _guarded(_stopping)

    @hookimpl
    def on_dag_run_running(self, dag_run: Any, msg: Any) -> None:
        _guarded(_dag_run_event, dag_run, "dag_run.start", "running")

    @hookimpl
    def on_dag_run_success(self, dag_run: Any, msg: Any) -> None:
        _guarded(_dag_run_event, dag_run, "dag_run.end", "success")

    @hookimpl
    def on_dag_run_failed(self, dag_run: Any, msg: Any) -> None:
        _guarded(_dag_run_event, dag_run, "dag_run.end", "failed")


listener = RunlinkListener()
