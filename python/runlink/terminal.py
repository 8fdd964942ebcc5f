"""Text for a terminal: every CLI value that came from a producer (dag ids, errors, metric keys, server replies)
goes through `printable`, on the agent side and the tracker's alike (agent code cannot import the tracker)."""

from __future__ import annotations

import re
from typing import Any

#: C0/C1 control characters but tab and newline, and the bidi overrides (text that reorders what is shown)
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: Any) -> str:
    """Text safe for a terminal: control characters (ANSI escapes, carriage returns, backspaces, bidi overrides)
    shown as escapes (`\\x1b`) instead of acting on the terminal."""
    return _CONTROL.sub(lambda m: m.group(0).encode("unicode_escape").decode("ascii"), str(text))


def one_line(text: Any) -> str:
    """`printable`, with tabs and newlines escaped too: for a value printed inside one line of a listing."""
    return printable(text).replace("\t", "\\t").replace("\n", "\\n")
