"""common-sql's `DbApiHook._run_command`: the one place every DbApiHook-based provider executes a statement.

`DbApiHook.run` splits the SQL and calls `_run_command(cur, statement, parameters)` per statement (so do the
providers that override `run`: Snowflake, Databricks SQL). The query id comes from the cursor where the driver
keeps one: Snowflake `cursor.sfqid`, Databricks SQL and Trino `cursor.query_id`; redshift_connector keeps none,
so `pg_last_query_id()` is asked on a second cursor of the same session (its rows are read eagerly, the user's
cursor keeps its result). PostgreSQL has no query id: its backend pid is recorded as the session.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from runlink.airflow.injection.base import Undo
from runlink.airflow.sql.patching import classes_defining, hook_target, loaded, patch_method
from runlink.airflow.sql.recorder import StatementRecorder
from runlink.airflow.sql.submitted import Submitted

MODULE = "airflow.providers.common.sql.hooks.sql"


def patch(recorder: StatementRecorder, undo: Undo, submitted: Submitted) -> None:
    module = loaded(MODULE)
    if module is None:
        try:  # common-sql is light and every SQL operator imports it: importing it here costs nothing new
            module = __import__(MODULE, fromlist=["DbApiHook"])
        except Exception:  # noqa: BLE001 - no common-sql provider: nothing to track
            return
    for klass in classes_defining(module.DbApiHook, "_run_command"):
        patch_method(undo, klass, "_run_command", lambda original: _wrap(original, recorder))


def _wrap(original: Callable[..., Any], recorder: StatementRecorder) -> Callable[..., Any]:
    def _run_command(self: Any, cur: Any, sql_statement: Any, parameters: Any = None, *args: Any,
                     **kwargs: Any) -> Any:
        wall, start = time.time(), time.perf_counter()
        try:
            result = original(self, cur, sql_statement, parameters, *args, **kwargs)
        except BaseException as exc:
            took = time.perf_counter() - start
            recorder.record(hook_target(self), sql_statement, wall, took, error=exc, hook=type(self).__name__,
                            session_id=_session(cur))
            raise
        took = time.perf_counter() - start
        _record_success(recorder, self, cur, sql_statement, wall, took)
        return result

    return _run_command


def _record_success(recorder: StatementRecorder, hook: Any, cur: Any, sql: Any, wall: float, took: float) -> None:
    try:
        rows = getattr(cur, "rowcount", None)
        recorder.record(hook_target(hook), sql, wall, took, rows=rows if isinstance(rows, int) else None,
                        query_id=query_id(cur), session_id=_session(cur), hook=type(hook).__name__)
    except Exception:  # noqa: BLE001 - a cursor without these attributes: the statement is recorded by record()
        recorder.record(hook_target(hook), sql, wall, took, hook=type(hook).__name__)


def query_id(cur: Any) -> str | None:
    """The engine's id of the statement the cursor just ran, where the driver has one."""
    for name in ("sfqid", "query_id"):
        value = getattr(cur, name, None)
        if isinstance(value, str) and value:
            return value
    if type(cur).__module__.startswith("redshift_connector"):
        return _redshift_last_query_id(cur)
    return None


def _redshift_last_query_id(cur: Any) -> str | None:
    """redshift_connector: `pg_last_query_id()` on another cursor of the session (the statement's own id).
    The session is the cursor's `_c` (its `connection` property warns that it is a DB-API extension)."""
    conn = getattr(cur, "_c", None)
    if conn is None:
        return None
    try:
        probe = conn.cursor()
        try:
            probe.execute("select pg_last_query_id()")
            row = probe.fetchone()
        finally:
            probe.close()
    except Exception:  # noqa: BLE001 - no id rather than a broken task
        return None
    value = row[0] if row else None
    return str(value) if value is not None and int(value) >= 0 else None


def _session(cur: Any) -> str | None:
    """PostgreSQL's backend pid (psycopg2 and psycopg 3 know it without a round trip)."""
    module = type(cur).__module__
    if not module.startswith("psycopg"):
        return None
    conn = getattr(cur, "connection", None)
    try:
        if hasattr(conn, "get_backend_pid"):
            return f"pid {conn.get_backend_pid()}"
        info = getattr(conn, "info", None)
        pid = getattr(info, "backend_pid", None)
        return f"pid {pid}" if pid else None
    except Exception:  # noqa: BLE001 - a closed connection
        return None
