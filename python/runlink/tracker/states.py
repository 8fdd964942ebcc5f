"""The tracker's vocabulary of states and errors, shared by the UI, the alerts and the CLI views.

Airflow, Spark and OpenLineage each spell the end of a run their own way; this tuple is the one place that
says which spellings count as failed, and `error_text` the one way a stored error
is shown on a line.
"""

from __future__ import annotations

from typing import Any

import orjson

FAILED = ("failed", "upstream_failed", "error")


def error_text(raw: Any) -> str | None:
    """A stored error (JSON text or dict) as one line for tables and alert messages."""
    if raw is None:
        return None
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            return raw[:300]
    if isinstance(raw, dict):
        text = ": ".join(p for p in (raw.get("type"), raw.get("message")) if p)
        return text[:300] or None
    return str(raw)[:300]
