"""How the UI spells values: durations, sizes, counts, instants, state classes, and which URLs may be links.

The Jinja filters (templating.py) and the Python-rendered fragments (fragments.py) both use these, so a value
reads the same in a template table and in a hot fragment."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit


def fmt_duration(seconds: float | None) -> str:
    """1.2s, 3m 05s, 2h 10m: compact, for tables."""
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds == 0:
        return "0s"
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "–"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def fmt_num(n: float | None) -> str:
    if n is None:
        return "–"
    if isinstance(n, float) and not n.is_integer():
        return f"{n:,.2f}"
    return f"{int(n):,}"


def fmt_ts(value: str | None) -> str:
    if not value:
        return "–"
    return value[:19].replace("T", " ")


def is_web_link(url: Any) -> bool:
    """Only http(s) URLs become links: a producer's `javascript:` or `data:` URL is shown as text."""
    if not isinstance(url, str):
        return False
    parsed = urlsplit(url.strip())
    return parsed.scheme.lower() in ("http", "https") and bool(parsed.netloc) and url == url.strip() \
        and not any(ord(c) < 32 for c in url)


def state_class(state: str | None) -> str:
    return "st-" + re.sub(r"[^a-z_]", "", (state or "unknown").lower())
