"""Airflow context: read it from the environment, normalize its many spellings.

Every agent (Airflow listener, child process, Spark driver) sends the context raw; the tracker
normalizes it with `normalize()` and links on the result. The JVM listener implements the same
rules (`dev.runlink.spark.context.ContextNormalizer`); `tests/vectors/context_normalization.json` keeps
both equal.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta, timezone

from runlink.instants import format_instant

#: The environment variables Airflow sets in a task process, and their key in a raw context.
ENV_KEYS: dict[str, str] = {
    "AIRFLOW_CTX_DAG_ID": "dag_id",
    "AIRFLOW_CTX_EXECUTION_DATE": "execution_date",
    "AIRFLOW_CTX_LOGICAL_DATE": "logical_date",
    "AIRFLOW_CTX_DAG_RUN_ID": "dag_run_id",
    "AIRFLOW_CTX_TASK_ID": "task_id",
    "AIRFLOW_CTX_TRY_NUMBER": "try_number",
    "AIRFLOW_CTX_MAP_INDEX": "map_index",
    "AIRFLOW_CTX_UID": "uid",
}
RAW_KEYS = tuple(ENV_KEYS.values())

_DATE = re.compile(r"^(\d{4})-?(\d{2})-?(\d{2})$")
_TIMESTAMP = re.compile(
    r"^(\d{4})-?(\d{2})-?(\d{2})[T ](\d{2}):?(\d{2}):?(\d{2})(?:[.,](\d{1,9}))?"
    r"\s*(Z|z|UTC|[+-]\d{2}(?::?\d{2})?)?$"
)


class ContextError(ValueError):
    """A context value that cannot be understood."""


@dataclass(frozen=True)
class NormalizedContext:
    """The context in one spelling: what the tracker links on.

    `logical_date` is a UTC instant (``2026-11-22T00:00:00.000000Z``) when the source gave a time;
    when it gave only a date (``{{ ds }}``), `logical_date` is None and `date_only` is True.
    `logical_day` is the UTC day in both cases. A missing try number stays None: it means the
    latest attempt. A missing map index is -1, as in Airflow.
    """

    uid: str | None
    dag_id: str | None
    dag_run_id: str | None
    logical_date: str | None
    logical_day: str | None
    date_only: bool
    task_id: str | None
    try_number: int | None
    map_index: int

    def key(self) -> str:
        """The canonical string the deterministic ids are computed from."""
        parts = [
            self.uid,
            self.dag_id,
            self.dag_run_id,
            self.logical_date,
            self.logical_day,
            self.task_id,
            str(self.map_index),
            None if self.try_number is None else str(self.try_number),
        ]
        return "|".join("" if p is None else p for p in parts)

    def is_airflow(self) -> bool:
        return self.dag_id is not None

    def to_dict(self) -> dict:
        return asdict(self)


def _clean(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _int_or_none(value: object) -> int | None:
    text = _clean(value)
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        try:
            as_float = float(text)
        except ValueError:
            return None
        return int(as_float) if as_float.is_integer() else None


def parse_logical_date(value: object) -> tuple[str | None, str | None]:
    """Parse an execution/logical date in any spelling Airflow templates produce.

    Returns ``(instant, day)``: the instant is None for a date-only spelling. Raises
    ContextError for text that is neither a date nor a timestamp.
    """
    text = _clean(value)
    if text is None:
        return None, None
    match = _DATE.match(text)
    if match:
        year, month, day = (int(g) for g in match.groups())
        try:
            return None, date(year, month, day).isoformat()
        except ValueError as exc:
            raise ContextError(f"not a date: {text!r}") from exc
    match = _TIMESTAMP.match(text)
    if not match:
        raise ContextError(f"not a timestamp or date: {text!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micros = int((fraction or "0")[:6].ljust(6, "0"))
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micros,
            tzinfo=_offset(offset),
        )
    except ValueError as exc:
        raise ContextError(f"not a timestamp: {text!r}") from exc
    instant = format_instant(moment)
    return instant, instant[:10]


def stored_instant(value: object) -> str | None:
    """Any ISO-8601 spelling -> the stored spelling (a date alone is its midnight UTC); None for null.
    Raises ContextError, and OverflowError for an instant outside years 1-9999 once in UTC."""
    if value is None:
        return None
    return stored_instant_text(str(value))


@functools.lru_cache(maxsize=65536)
def stored_instant_text(text: str) -> str:
    """`stored_instant` of text, cached: the tracker reads the same few spellings again and again."""
    instant, day = parse_logical_date(text)
    if instant is None:
        if day is None:
            raise ContextError("empty")
        return day + "T00:00:00.000000Z"
    return instant


def _offset(text: str | None) -> timezone:
    if text is None or text in ("Z", "z", "UTC"):
        return timezone.utc
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours = int(digits[:2])
    minutes = int(digits[2:4] or 0)
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def normalize(raw: Mapping[str, object] | None) -> NormalizedContext:
    """Normalize a raw context (keys of `RAW_KEYS`). Bad dates raise ContextError."""
    raw = raw or {}
    date_value = _clean(raw.get("execution_date")) or _clean(raw.get("logical_date"))
    logical_date, logical_day = parse_logical_date(date_value)
    map_index = _int_or_none(raw.get("map_index"))
    return NormalizedContext(
        uid=_clean(raw.get("uid")),
        dag_id=_clean(raw.get("dag_id")),
        dag_run_id=_clean(raw.get("dag_run_id")),
        logical_date=logical_date,
        logical_day=logical_day,
        date_only=logical_day is not None and logical_date is None,
        task_id=_clean(raw.get("task_id")),
        try_number=_int_or_none(raw.get("try_number")),
        map_index=-1 if map_index is None else map_index,
    )


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The raw context of this process, from `AIRFLOW_CTX_*` (empty when there is none)."""
    environ = os.environ if environ is None else environ
    raw = {}
    for env_name, key in ENV_KEYS.items():
        value = _clean(environ.get(env_name))
        if value is not None:
            raw[key] = value
    return raw


def to_env(raw: Mapping[str, object]) -> dict[str, str]:
    """The `AIRFLOW_CTX_*` variables for a raw context (what a child process must inherit)."""
    by_key = {key: env_name for env_name, key in ENV_KEYS.items()}
    return {by_key[k]: str(v) for k, v in raw.items() if k in by_key and _clean(v) is not None}
