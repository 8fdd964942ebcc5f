"""Keyset pagination for every list (API and UI): a page continues from the sort key of the last row it showed,
never from an offset, so a page costs the same at row 10 as at row 10 million (with an index on the sort columns)
and rows inserted meanwhile never shift a row onto two pages.

A listing names its order: columns (or expressions) with a direction, the last one unique (the id), and a row's
values of them make its cursor. `next` continues after the last row; `previous` goes back from the first row
(the same query, comparisons and order flipped, the rows reversed). Cursors are opaque url-safe strings; one this
server did not make raises ValueError (routes answer 422).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import Connection, and_, or_
from sqlalchemy.sql import ColumnElement, Select

MAX_LIMIT = 1000


@dataclass(frozen=True)
class Order:
    """One sort column of a listing: the expression, its result label in the row, and whether it is descending."""

    column: ColumnElement
    label: str
    descending: bool = False


def encode(values: Sequence[Any], backwards: bool = False) -> str:
    return base64.urlsafe_b64encode(orjson.dumps({"k": list(values), "b": backwards})).decode().rstrip("=")


def decode(cursor: str, width: int) -> tuple[list[Any], bool]:
    """(the sort key values, whether the cursor pages backwards); ValueError on anything else."""
    try:
        body = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values, backwards = body["k"], body["b"]
    except Exception as exc:  # noqa: BLE001 - any garbage is a bad cursor
        raise ValueError("bad cursor") from exc
    if not isinstance(values, list) or len(values) != width or not isinstance(backwards, bool) \
            or not all(isinstance(v, str) for v in values):  # every listing sorts on text columns
        raise ValueError("bad cursor")
    return values, backwards


def _after(order: Sequence[Order], values: Sequence[Any], backwards: bool) -> ColumnElement:
    """Rows strictly after `values` in the listing's order (before them when `backwards`)."""
    clauses = []
    for n, (item, value) in enumerate(zip(order, values, strict=True)):
        later = item.column < value if item.descending != backwards else item.column > value
        clauses.append(and_(*(o.column == v for o, v in zip(order[:n], values[:n], strict=True)), later))
    return or_(*clauses)


def page(conn: Connection, stmt: Select, order: Sequence[Order], cursor: str | None, limit: int,
         shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """One page of `stmt` (which selects every `order` label): {"items", "next", "previous"}, the last two
    cursors or None at either end. `shape` turns a row into the item the listing answers."""
    limit = max(1, min(limit, MAX_LIMIT))
    backwards = False
    if cursor:
        values, backwards = decode(cursor, len(order))
        stmt = stmt.where(_after(order, values, backwards))
    flip = backwards
    stmt = stmt.order_by(*((o.column.asc() if o.descending == flip else o.column.desc()) for o in order))
    result = conn.execute(stmt.limit(limit + 1))
    names = [str(key) for key in result.keys()]  # plain str: a column's name is a str subclass orjson refuses
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    keys = [[row[o.label] for o in order] for row in (rows[0], rows[-1])] if rows else []
    if backwards:
        next_cursor = encode(keys[1]) if rows else None
        previous = encode(keys[0], backwards=True) if more else None
    else:
        next_cursor = encode(keys[1]) if more else None
        previous = encode(keys[0], backwards=True) if rows and cursor else None
    items = [shape(row) for row in rows] if shape else rows
    return {"items": items, "next": next_cursor, "previous": previous}
