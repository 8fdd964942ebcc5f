"""Dialect-neutral bulk writes: insert-or-ignore and last-writer-wins upserts (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Table, case, or_
from sqlalchemy.dialects import postgresql, sqlite


def _insert(conn: Connection, table: Table):
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignore(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows, skipping those whose primary key exists (replays, concurrent duplicates)."""
    if rows:
        conn.execute(_insert(conn, table).on_conflict_do_nothing(), list(rows))


def reduce_lww(rows: Iterable[dict[str, Any]], keys: Sequence[str], stamp: str) -> list[dict[str, Any]]:
    """Keep, per key, the row with the highest stamp (one row per key per statement: PostgreSQL
    refuses to update the same row twice in one INSERT)."""
    best: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = tuple(row[k] for k in keys)
        current = best.get(key)
        if current is None or (row[stamp] or "") > (current[stamp] or ""):
            best[key] = row
    return list(best.values())


def upsert_lww(
    conn: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    stamp: str,
    columns: Sequence[str],
) -> None:
    """Insert rows; on a key conflict, overwrite `columns` (and `stamp`) only when the incoming stamp is
    higher. Stamps are `merge.stamp(time, event_id)`, so the stored row does not depend on arrival order."""
    rows = reduce_lww(rows, keys, stamp)
    if not rows:
        return
    stmt = _insert(conn, table)
    current = table.c[stamp]
    newer = or_(current.is_(None), stmt.excluded[stamp] > current)
    updates = {col: case((newer, stmt.excluded[col]), else_=table.c[col]) for col in (*columns, stamp)}
    conn.execute(stmt.on_conflict_do_update(index_elements=list(keys), set_=updates), rows)
