"""One recorder per executed task: turns what a SQL hook ran into `sql_statement` events under the attempt.

Cheap by design (the statement's tables are parsed by the tracker at ingest, not here): the text is bounded and
masked, literals are optionally replaced by `?`, and the event goes to the asynchronous client (never blocks).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from datetime import datetime, timezone
from typing import Any

from runlink.masking import mask_text

log = logging.getLogger("runlink.airflow")

AGENT = "airflow"
#: error messages kept per statement (the database's message, not a traceback)
ERROR_CHARS = 8192
#: quoted strings (with doubled-quote escapes), dollar-quoted bodies and numbers that are not part of a name
_LITERALS = re.compile(r"'(?:[^']|'')*'|\$\$.*?\$\$|(?<![\w.\"$])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w.])",
                       re.DOTALL)


def strip_literals(text: str) -> str:
    """The statement with its string and number literals replaced by `?` (values can be personal data)."""
    return _LITERALS.sub("?", text)


def statement_text(sql: Any, max_chars: int, literals: bool) -> tuple[str, bool]:
    """(the statement as stored: bounded first, then literals stripped if asked, then masked; was it cut?)."""
    text = sql if isinstance(sql, str) else str(sql)
    cut = len(text) > max_chars
    if cut:
        text = text[:max_chars]
    if not literals:
        text = strip_literals(text)
    return mask_text(text), cut


def _instant(wall: float) -> str:
    from runlink.instants import format_instant

    return format_instant(datetime.fromtimestamp(wall, timezone.utc))


class Target:
    """Where a statement ran: engine and host (never the login or password)."""

    __slots__ = ("engine", "host", "database")

    def __init__(self, engine: str | None, host: str | None = None, database: str | None = None) -> None:
        self.engine = engine
        self.host = host
        self.database = database


class StatementRecorder:
    """Emits one event per statement; `seq` orders the statements of the attempt (clock ties)."""

    def __init__(self, raw: dict[str, str], max_chars: int = 16384, literals: bool = True) -> None:
        self.raw = raw
        self.max_chars = max_chars
        self.literals = literals
        self._seq = itertools.count()

    def record(self, target: Target, sql: Any, start_wall: float, duration_s: float | None, *,
               error: BaseException | str | None = None, rows: int | None = None, query_id: Any = None,
               session_id: Any = None, hook: str | None = None, state: str | None = None,
               bytes_scanned: int | None = None) -> None:
        """Queue the statement's event; never raises (tracking must not break the task)."""
        try:
            text, cut = statement_text(sql, self.max_chars, self.literals)
            payload: dict[str, Any] = {
                "seq": next(self._seq), "statement": text, "start_time": _instant(start_wall),
                "success": error is None and state not in ("failed", "aborted", "cancelled"),
                "engine": target.engine, "host": target.host, "database": target.database, "hook": hook,
                "state": state, "bytes_scanned": bytes_scanned,
            }
            if cut:
                payload["statement_truncated"] = True
            if duration_s is not None:
                payload["duration_ms"] = round(duration_s * 1000.0, 3)
            if rows is not None and rows >= 0:
                payload["rows"] = int(rows)
            if query_id not in (None, ""):
                payload["query_id"] = str(query_id)[:255]
            if session_id not in (None, ""):
                payload["session_id"] = str(session_id)[:255]
            if error is not None:
                payload["error"] = _error(error)
            self._emit({k: v for k, v in payload.items() if v is not None})
        except Exception:  # noqa: BLE001 - a tracking failure never reaches the task
            log.debug("runlink: could not record a SQL statement", exc_info=True)

    def _emit(self, payload: dict[str, Any]) -> None:
        from runlink.delivery import get_client
        from runlink.protocol.events import make_event

        get_client().emit(make_event("sql_statement", payload, context=self.raw, agent=AGENT))


def _error(error: BaseException | str) -> dict[str, str]:
    if isinstance(error, str):
        return {"message": mask_text(error[:ERROR_CHARS])}
    message = str(error).strip()
    return {"type": type(error).__name__[:500], "message": mask_text(message[:ERROR_CHARS])}


def now() -> tuple[float, float]:
    """(wall clock for the start instant, monotonic clock for the duration)."""
    return time.time(), time.perf_counter()
