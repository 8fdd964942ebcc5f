"""Statements submitted to an API (Redshift Data, Athena, BigQuery) whose outcome arrives in a later response.

The hook that submits registers the statement by its id; the wrapper that sees the terminal response records it
once. Whatever never finished inside the task (a deferred operator, `wait_for_completion=False`) is recorded as
submitted when the task's patches are undone.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from runlink.airflow.sql.recorder import StatementRecorder, Target


@dataclass
class Submission:
    target: Target
    sql: Any
    wall: float
    perf: float
    hook: str
    extra: dict[str, Any] = field(default_factory=dict)


class Submitted:
    """Submitted statements by id, and the ids already recorded (a terminal response is often read twice)."""

    def __init__(self, recorder: StatementRecorder) -> None:
        self.recorder = recorder
        self._open: dict[str, Submission] = {}
        self._done: set[str] = set()
        self._lock = threading.Lock()

    def add(self, key: str, submission: Submission) -> None:
        with self._lock:
            if key not in self._done:
                self._open[key] = submission

    def take(self, key: str) -> Submission | None:
        """The submission to record now (None when unknown or recorded already); marks it recorded."""
        with self._lock:
            if key in self._done:
                return None
            self._done.add(key)
            return self._open.pop(key, None)

    def mark(self, key: str) -> bool:
        """Mark `key` recorded; False when it already was."""
        with self._lock:
            if key in self._done:
                return False
            self._done.add(key)
            self._open.pop(key, None)
            return True

    def record_unfinished(self) -> None:
        with self._lock:
            left, self._open = list(self._open.items()), {}
        for key, s in left:
            self.recorder.record(s.target, s.sql, s.wall, None, query_id=s.extra.get("query_id", key),
                                 session_id=s.extra.get("session_id"), hook=s.hook, state="submitted")
