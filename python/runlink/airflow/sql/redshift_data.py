"""The Redshift Data API (`RedshiftDataHook`): a statement is submitted (`execute_statement`, or
`batch_execute_statement` for a list) and its outcome is read with `describe_statement`, which the hook parses in
`parse_statement_response`. The describe response gives the statement's Redshift query id (`RedshiftQueryId`),
`ResultRows` (-1: none), `Duration` (nanoseconds), `Status` and `Error`; a batch's `SubStatements` one each."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from runlink.airflow.injection.base import Undo
from runlink.airflow.sql.patching import patch_hook_methods
from runlink.airflow.sql.recorder import StatementRecorder, Target
from runlink.airflow.sql.submitted import Submission, Submitted

MODULE = "airflow.providers.amazon.aws.hooks.redshift_data"
TERMINAL = frozenset({"FINISHED", "FAILED", "ABORTED"})


def patch(recorder: StatementRecorder, undo: Undo, submitted: Submitted) -> None:
    patch_hook_methods(undo, MODULE, "RedshiftDataHook", {
        "execute_query": lambda original: _execute_query(original, recorder, submitted),
        "parse_statement_response": lambda original: _parse(original, recorder, submitted),
    })


def _target(kwargs: dict[str, Any]) -> Target:
    host = kwargs.get("cluster_identifier") or kwargs.get("workgroup_name")
    return Target("redshift", str(host) if host else None, kwargs.get("database"))


def _execute_query(original: Callable[..., Any], recorder: StatementRecorder,
                   submitted: Submitted) -> Callable[..., Any]:
    def execute_query(self: Any, *args: Any, **kwargs: Any) -> Any:
        sql = kwargs.get("sql", args[0] if args else None)
        wall, perf = time.time(), time.perf_counter()
        pending: dict[str, Any] = {"sql": sql, "target": _target(kwargs), "wall": wall, "perf": perf}
        self.__dict__["_runlink_pending"] = pending  # parse_statement_response finds the submission here
        try:
            output = original(self, *args, **kwargs)
        except BaseException as exc:
            if not pending.get("recorded"):  # refused before a statement existed (validation, permissions)
                recorder.record(pending["target"], sql, wall, time.perf_counter() - perf, error=exc,
                                hook=type(self).__name__)
            raise
        finally:
            self.__dict__.pop("_runlink_pending", None)
        statement_id = getattr(output, "statement_id", output)
        if isinstance(statement_id, str) and not pending.get("recorded"):
            submitted.add(statement_id, Submission(pending["target"], sql, wall, perf, type(self).__name__,
                                                   {"session_id": statement_id}))
        return output

    return execute_query


def _parse(original: Callable[..., Any], recorder: StatementRecorder, submitted: Submitted) -> Callable[..., Any]:
    def parse_statement_response(self: Any, resp: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            _finished(self, resp, recorder, submitted)
        except Exception:  # noqa: BLE001 - an unexpected response shape: the hook handles it as before
            pass
        return original(self, resp, *args, **kwargs)

    return parse_statement_response


def _finished(hook: Any, resp: dict[str, Any], recorder: StatementRecorder, submitted: Submitted) -> None:
    if resp.get("Status") not in TERMINAL:
        return
    statement_id = resp.get("Id")
    pending = hook.__dict__.get("_runlink_pending")
    if pending is not None and not pending.get("recorded"):
        pending["recorded"] = True
        submitted.mark(statement_id)
        submission = Submission(pending["target"], pending["sql"], pending["wall"], pending["perf"],
                                type(hook).__name__)
    else:
        submission = submitted.take(statement_id)
    if submission is None:
        return
    if resp.get("Database") and not submission.target.database:
        submission.target = Target("redshift", submission.target.host, resp["Database"])
    parts = resp.get("SubStatements") or [resp]
    for part in parts:
        _record(recorder, submission, part, resp)


def _record(recorder: StatementRecorder, s: Submission, part: dict[str, Any], whole: dict[str, Any]) -> None:
    status = part.get("Status") or whole.get("Status")
    duration_ns = part.get("Duration")
    created = part.get("CreatedAt")
    wall = created.timestamp() if isinstance(created, datetime) else s.wall
    query_id = part.get("RedshiftQueryId")
    rows = part.get("ResultRows")
    recorder.record(
        s.target, part.get("QueryString") or s.sql, wall,
        duration_ns / 1e9 if isinstance(duration_ns, int) and duration_ns >= 0 else time.perf_counter() - s.perf,
        error=part.get("Error") or (f"statement {status.lower()}" if status in ("FAILED", "ABORTED") else None),
        rows=rows if isinstance(rows, int) and rows >= 0 else None,
        query_id=query_id if isinstance(query_id, int) and query_id > 0 else None,
        session_id=part.get("Id"), hook=s.hook, state=str(status).lower() if status else None,
    )
