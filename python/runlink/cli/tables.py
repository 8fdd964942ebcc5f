"""Listings (`runs list`, `token list`, `alerts list`, `lineage pending`, ...): JSON with `--json`, one line that
says there is nothing, or aligned text tables with every cell on one line."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from runlink.terminal import one_line


def print_table(rows: Sequence[Sequence[Any]]) -> None:
    """Print rows (the first is the header) in columns; producer text is escaped (`one_line`)."""
    cells = [[one_line(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def print_json_or_empty(items: list[Any], as_json: bool, empty: str) -> bool:
    """Print the items as JSON (`--json`), or `empty` when there are none; True when that was the whole listing."""
    if as_json:
        print(json.dumps(items, indent=2))
        return True
    if not items:
        print(empty)
        return True
    return False
