"""Instants: the one spelling on the wire and in storage, and the one lenient parser for reading it back.

Every agent and every tracker module formats with `format_instant` and reads with `parse_instant`, so an
instant sorts as text, compares as a datetime and never raises on a stored value written by an older release.
"""

from __future__ import annotations

from datetime import datetime, timezone


def format_instant(moment: datetime) -> str:
    """UTC, microseconds, `Z`: the one spelling of an instant on the wire and in storage."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    moment = moment.astimezone(timezone.utc)
    # the year by hand: glibc's %Y gives "1" for year 1, and the spelling must stay sortable text (years 1-9999)
    return f"{moment.year:04d}" + moment.strftime("-%m-%dT%H:%M:%S.%f") + "Z"


def now_instant() -> str:
    return format_instant(datetime.now(timezone.utc))


def parse_instant(value: str | None) -> datetime | None:
    """An ISO-8601 instant as an aware datetime (naive text is UTC); None for empty or unparsable text."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from one stored instant to another, never negative; None when either is missing."""
    a, b = parse_instant(start), parse_instant(end)
    if a is None or b is None:
        return None
    return max(0.0, (b - a).total_seconds())
