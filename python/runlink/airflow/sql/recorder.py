"""One recorder per executed task: turns what a SQL hook ran into `sql_statement` events under the attempt.

Cheap by design (the statement's tables are parsed by the tracker at ingest, not here): the text is bounded here,
then masked (literals optionally replaced by `?`) by the delivery client's sender thread when it builds the event,
before the event leaves the process; the caller only queues it (never blocks).
"""

from __future__ import annotations

import itertools
import logging
import re
import time
from collections.abc import Iterator, Mapping
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
        """Queue the statement's event; never raises (tracking must not break the task).

        Only cheap work happens here: the text is masked (and its literals stripped) when the sender thread
        builds the event (`_LazyEvent`), before it leaves the process. Masking a 2 KB statement that holds
        secret-looking words costs ~0.7 ms, more than the whole bound of a statement's tracking."""
        try:
            payload: dict[str, Any] = {
                "seq": next(self._seq), "success": error is None and state not in ("failed", "aborted", "cancelled"),
                "engine": target.engine, "host": target.host, "database": target.database, "hook": hook,
                "state": state, "bytes_scanned": bytes_scanned,
            }
            if duration_s is not None:
                payload["duration_ms"] = round(duration_s * 1000.0, 3)
            if rows is not None and rows >= 0:
                payload["rows"] = int(rows)
            if query_id not in (None, ""):
                payload["query_id"] = str(query_id)[:255]
            if session_id not in (None, ""):
                payload["session_id"] = str(session_id)[:255]
            text = sql if isinstance(sql, str) else str(sql)
            if len(text) > self.max_chars:
                text = text[:self.max_chars]
                payload["statement_truncated"] = True
            message = None
            if error is not None:
                message = (None, error) if isinstance(error, str) else (type(error).__name__, str(error).strip())
            self._emit(_LazyEvent(self.raw, {k: v for k, v in payload.items() if v is not None}, text,
                                  self.literals, message, start_wall, time.time()))
        except Exception:  # noqa: BLE001 - a tracking failure never reaches the task
            log.debug("runlink: could not record a SQL statement", exc_info=True)

    def _emit(self, event: Mapping[str, Any]) -> None:
        from runlink.delivery import get_client

        get_client().emit(event)


class _LazyEvent(Mapping):
    """A `sql_statement` event built (masked) on first read: by the delivery client's sender thread, which
    takes every queued event as `dict(event)` before validating and sending it."""

    __slots__ = ("_parts", "_event")

    def __init__(self, raw: dict[str, str], payload: dict[str, Any], text: str, literals: bool,
                 error: tuple[str | None, str] | None, start_wall: float, end_wall: float) -> None:
        self._parts = (raw, payload, text, literals, error, start_wall, end_wall)
        self._event: dict[str, Any] | None = None

    def _built(self) -> dict[str, Any]:
        if self._event is None:
            self._event = _build(*self._parts)
        return self._event

    def __getitem__(self, key: str) -> Any:
        return self._built()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._built())

    def __len__(self) -> int:
        return len(self._built())


def _build(raw: dict[str, str], payload: dict[str, Any], text: str, literals: bool,
           error: tuple[str | None, str] | None, start_wall: float, end_wall: float) -> dict[str, Any]:
    from runlink.protocol.events import make_event

    payload = dict(payload)
    try:
        payload["statement"] = mask_text(text if literals else strip_literals(text))
        if error is not None:
            kind, message = error
            payload["error"] = {"message": mask_text(message[:ERROR_CHARS])}
            if kind:
                payload["error"]["type"] = kind[:500]
        payload["start_time"] = _instant(start_wall)
    except Exception:  # noqa: BLE001 - never an unmasked text; the statement's figures still go
        payload["statement"] = "(not recorded: runlink could not mask it)"
        payload.pop("error", None)
    return make_event("sql_statement", payload, context=raw, agent=AGENT, time=_instant(end_wall))
