"""How the UI spells values: durations, sizes, counts, instants, state classes, and which URLs may be links.

The Jinja filters (templating.py) and the Python-rendered fragments (fragments.py) both use these, so a value
reads the same in a template table and in a hot fragment."""

from __future__ import annotations

import ast
import json
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


#: words of a metric key spelled as people write them
_ACRONYMS = {"cpu": "CPU", "jvm": "JVM", "gc": "GC", "io": "I/O", "sql": "SQL", "id": "id"}
#: a metric key's unit suffix -> how its value reads
_UNIT_SUFFIXES = (("_ns", 1e-9, "duration"), ("_ms", 1e-3, "duration"), ("_s", 1.0, "duration"),
                  ("_bytes", 1.0, "size"))


def metric_label(key: str) -> str:
    """`executor_cpu_time_ns` -> `Executor CPU time`: the unit suffix goes (the value shows it), words spelled."""
    for suffix, _, _ in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            key = key[: -len(suffix)]
            break
    words = [_ACRONYMS.get(w, w) for w in key.split("_") if w]
    if not words:
        return key
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def metric_value(key: str, value: Any) -> str:
    """A metric's value in the unit its key names (`_ns`, `_ms`, `_s` as durations, `_bytes` as sizes)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    for suffix, factor, kind in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return fmt_duration(value * factor) if kind == "duration" else fmt_bytes(value)
    return fmt_num(value)


def stage_label(stage_id: int, attempt_id: int | None) -> str:
    """`2`, or `2 (retry 1)` for a stage's later attempt: `2.0` reads as a number, not as stage 2, attempt 0."""
    return str(stage_id) if not attempt_id else f"{stage_id} (retry {attempt_id})"


def param_value(value: Any) -> str:
    """A task parameter as its value: strings as they are (a Python repr such as `'local[2]'` unquoted), the
    rest as JSON without ASCII escapes."""
    if isinstance(value, str):
        text = value.strip()
        if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
            try:
                parsed = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return value
            return parsed if isinstance(parsed, str) else value
        return value
    return json.dumps(value, ensure_ascii=False, indent=2 if isinstance(value, dict | list) else None,
                      default=str)
