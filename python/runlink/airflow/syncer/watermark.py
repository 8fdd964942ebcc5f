"""The incremental window: from the tracker's watermark, minus an overlap, to now.

The watermark is the local time at which the last successful cycle started, so every record Airflow changed
after it has `updated_at >= watermark`. The overlap absorbs clock skew between this host and Airflow's database
and transactions that committed late with an earlier `updated_at`. Records inside the overlap are re-sent; their
events have the same ids, so the tracker counts them as duplicates and writes nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from runlink.context import parse_logical_date
from runlink.instants import format_instant

DEFAULT_OVERLAP_S = 120.0


def parse(value: str) -> datetime:
    moment, day = parse_logical_date(value)
    text = moment or (day + "T00:00:00.000000Z" if day else None)
    if text is None:
        raise ValueError(f"not an instant: {value!r}")
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def window_start(watermark: str | None, since: str | None, overlap_s: float = DEFAULT_OVERLAP_S) -> str | None:
    """`updated_at_gte` for this cycle: `since` (a backfill) wins; else watermark - overlap; None = everything."""
    if since:
        return format_instant(parse(since))
    if not watermark:
        return None
    return format_instant(parse(watermark) - timedelta(seconds=overlap_s))


def lag_seconds(watermark: str | None) -> float | None:
    """How far the tracker's view may be behind Airflow right now."""
    if not watermark:
        return None
    return round((datetime.now(timezone.utc) - parse(watermark)).total_seconds(), 3)
