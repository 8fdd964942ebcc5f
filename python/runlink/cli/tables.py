"""Aligned text tables for listings (`runs list`, `token list`, `lineage pending`): every cell on one line."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from runlink.terminal import one_line


def print_table(rows: Sequence[Sequence[Any]]) -> None:
    """Print rows (the first is the header) in columns; producer text is escaped (`one_line`)."""
    cells = [[one_line(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
