"""Values as a person reads them: durations (`850 ms`, `3.3 s`, `2 min 05 s`), sizes in binary units (`1.2 GiB`),
instants to the second, and long text cut at a word. Stdlib only: the CLI on a Spark driver uses it, and so does
the tracker's UI, so a value reads the same in a terminal and in a page."""

from __future__ import annotations

_SIZE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")


def duration(seconds: float | None, missing: str = "-") -> str:
    """`850 ms`, `3.3 s`, `2 min 05 s`, `1 h 10 min`, `2 d 03 h`: one or two units, never a raw float."""
    if seconds is None:
        return missing
    seconds = float(seconds)
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 59.95:
        return f"{sign}{seconds:.1f} s"
    whole = int(round(seconds))
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{sign}{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{sign}{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{sign}{days} d {hours:02d} h"


def size(n: float | None, missing: str = "-") -> str:
    """`512 B`, `1.5 KiB`, `1.2 GiB`: powers of 1024, named as such."""
    if n is None:
        return missing
    value = float(n)
    for unit in _SIZE_UNITS:
        if abs(value) < 1024 or unit == _SIZE_UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def number(value: float | None, missing: str = "-") -> str:
    """`1,234` and `3,331.19`: thousands separated, at most two decimals."""
    if value is None:
        return missing
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def instant(value: str | None, missing: str = "-") -> str:
    """An ISO-8601 instant to the second, `2026-11-21 00:59:00` (the stored spelling carries microseconds)."""
    if not value:
        return missing
    return value[:19].replace("T", " ")



def clip(text: str, width: int) -> str:
    """`text` on at most `width` characters, cut at a word boundary with an ellipsis (never mid-word, unless one
    word alone is wider than half the width)."""
    text = " ".join(str(text).split())
    if len(text) <= width:
        return text
    head = text[: width - 1]
    cut = head.rfind(" ")
    if cut >= width // 2:
        head = head[:cut]
    return head.rstrip(" ,;:.") + "…"
