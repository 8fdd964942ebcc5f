"""Dialect-neutral plain SQL (SQLite and PostgreSQL): `?`-marked statements, chunked IN-list reads, and bulk
writes (insert-or-ignore, last-writer-wins upserts).

The hot ingest path sends plain SQL text with positional parameters straight to the driver: SQLAlchemy's per-row
parameter processing cost more than the database did. On SQLite that is executemany (in-process, a row costs
microseconds). On PostgreSQL a bulk write is one set-based statement, `INSERT ... SELECT FROM unnest(arrays)`,
one array per column: executemany there planned and ran every row as its own statement, 2-4x the server time of
SQLite for the same batch.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from operator import itemgetter
from typing import Any

from psycopg.rows import namedtuple_row
from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql

from runlink.tracker import pg_arrays


def run(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """Plain driver SQL written with `?` marks, on either backend (no per-call compiling)."""
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, params)


@functools.cache
def _marks(dialect: str, n: int) -> str:
    return ", ".join(("?" if dialect == "sqlite" else "%s",) * n)


def select_in(conn: Connection, sql: str, values: Sequence[Any], before: Sequence[Any] = (),
              size: int = 900) -> list[Any]:
    """`sql` has `?` marks for `before`, then one `({})` for an IN list over `values`; run in chunks as plain
    driver SQL. Rows are addressable by column name."""
    if _as_array(conn, sql):
        # one array parameter: a 500-item IN list cost PostgreSQL twice the time to parse and plan
        with _driver(conn).cursor(row_factory=namedtuple_row) as cursor:
            cursor.execute(*_pg_in(sql, values, before))
            return cursor.fetchall()
    out: list[Any] = []
    for result in _in_chunks(conn, sql, values, before, size):
        out.extend(result.fetchall())
    return out


def _as_array(conn: Connection, sql: str) -> bool:
    """Whether `sql`'s IN list goes to PostgreSQL as one array parameter (`_pg_in`): one plain `IN ({})`."""
    return conn.dialect.name == "postgresql" and sql.count(" IN ({})") == 1 and " NOT IN ({})" not in sql


def _pg_in(sql: str, values: Sequence[Any], before: Sequence[Any]) -> tuple[str, tuple]:
    """A `select_in` statement for PostgreSQL: the IN list as one array parameter."""
    array, cast = _any_array(values)
    return sql.replace("?", "%s").replace(" IN ({})", f" = ANY(%s{cast})"), (*before, array)


def _in_chunks(conn: Connection, sql: str, values: Sequence[Any], before: Sequence[Any],
               size: int = 900) -> Iterator[Any]:
    """`sql` run as plain driver SQL once per chunk of `values` in its IN list; yields each chunk's result."""
    dialect = conn.dialect.name
    template = sql if dialect == "sqlite" else sql.replace("?", "%s")
    for start in range(0, len(values), size):
        chunk = values[start : start + size]
        yield conn.exec_driver_sql(template.format(_marks(dialect, len(chunk))), (*before, *chunk))


#: one read of `select_many`: (sql with `?` marks, the IN list's values or None when it has none, the `?` values)
Read = tuple[str, Sequence[Any] | None, Sequence[Any]]


def select_many(conn: Connection, reads: Sequence[Read]) -> list[list[Any]]:
    """Independent reads (each a `select_in`, or a plain statement when its values are None), the rows of each in
    order. On PostgreSQL they go in one round trip (a pipeline); a read with an empty IN list is not sent."""
    if not _pipelinable(conn, reads):
        return _select_each(conn, reads)
    with _driver(conn).pipeline():
        fetch = _queue(conn, reads)
    return fetch()


def read_ahead(conn: Connection, reads: Sequence[Read]) -> Callable[[], list[list[Any]]]:
    """`select_many` queued inside an open `pipelined` block, behind the writes sent before it (which it sees):
    the returned function gives the rows of each read once the block has ended, so the writes and these reads
    cost one round trip. On SQLite the reads run at once."""
    if not _pipelinable(conn, reads):
        rows = _select_each(conn, reads)
        return lambda: rows
    return _queue(conn, reads)


def _pipelinable(conn: Connection, reads: Sequence[Read]) -> bool:
    return conn.dialect.name == "postgresql" and all(values is None or _as_array(conn, sql)
                                                     for sql, values, _ in reads)


def _select_each(conn: Connection, reads: Sequence[Read]) -> list[list[Any]]:
    return [run(conn, sql, before).fetchall() if values is None else select_in(conn, sql, values, before)
            for sql, values, before in reads]


def _queue(conn: Connection, reads: Sequence[Read]) -> Callable[[], list[list[Any]]]:
    """Send `reads` in the connection's open pipeline; the function fetches their rows (after its sync)."""
    driver = _driver(conn)
    cursors: list[Any] = []
    for sql, values, before in reads:
        if values is not None and not values:
            cursors.append(None)
            continue
        cursor = driver.cursor(row_factory=namedtuple_row)
        cursor.execute(*(_pg_in(sql, values, before) if values is not None else (sql.replace("?", "%s"),
                                                                               tuple(before))))
        cursors.append(cursor)
    return lambda: [[] if cursor is None else cursor.fetchall() for cursor in cursors]


def execute_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> None:
    """One `?`-marked statement per row of parameters. On PostgreSQL on the driver, so it may go in `pipelined`."""
    if rows:
        _executemany(conn, sql if conn.dialect.name == "sqlite" else sql.replace("?", "%s"), list(rows))


def delete_in(conn: Connection, table: str, column: str, values: Sequence[Any]) -> None:
    """DELETE the rows whose `column` is in `values`. On PostgreSQL one statement on the driver, so it may go in
    `pipelined`."""
    if not values:
        return
    sql = f"DELETE FROM {_q(table)} WHERE {_q(column)} IN ({{}})"
    if _as_array(conn, sql):
        with _driver(conn).cursor() as cursor:
            cursor.execute(*_pg_in(sql, values, ()))
        return
    for _result in _in_chunks(conn, sql, values, ()):
        pass


def _any_array(values: Sequence[Any]) -> tuple[Any, str]:
    """The parameter (and its cast) of `= ANY(...)`: an array of ints (binary) or strings (a literal) built in C
    (psycopg's list adaptation walks every element in Python), else the list."""
    kinds = set(map(type, values))
    try:
        if kinds == {str}:
            return pg_arrays.texts(values), "::text[]"
        if kinds == {int}:
            return pg_arrays.bigints(values), "::bigint[]"
    except TypeError:  # an int past 64 bits: psycopg picks the array's type
        pass
    return list(values), ""


def _q(name: str) -> str:
    return '"' + name + '"'


@functools.cache
def _insert_sql(dialect: str, table: str, columns: tuple[str, ...]) -> str:
    mark = "?" if dialect == "sqlite" else "%s"
    return (f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) "
            f"VALUES ({', '.join(mark for _ in columns)})")


_IGNORE = " ON CONFLICT DO NOTHING"


@functools.cache
def _ignore_sql(dialect: str, table: str, columns: tuple[str, ...]) -> str:
    return _insert_sql(dialect, table, columns) + _IGNORE


@functools.cache
def _conflict_sql(table: str, keys: tuple[str, ...], stamp: str, updated: tuple[str, ...]) -> str:
    """Last writer wins: a stored row is overwritten only by a higher stamp."""
    sets = ", ".join(f"{_q(c)} = excluded.{_q(c)}" for c in (*updated, stamp))
    return (f" ON CONFLICT ({', '.join(_q(k) for k in keys)}) DO UPDATE SET {sets}"
            f" WHERE {_q(table)}.{_q(stamp)} IS NULL OR excluded.{_q(stamp)} > {_q(table)}.{_q(stamp)}")


@functools.cache
def _lww_sql(dialect: str, table: str, columns: tuple[str, ...], keys: tuple[str, ...], stamp: str,
             updated: tuple[str, ...]) -> str:
    return _insert_sql(dialect, table, columns) + _conflict_sql(table, keys, stamp, updated)


def _params(rows: Sequence[dict[str, Any]], columns: tuple[str, ...]) -> list[tuple]:
    return [tuple(row[c] for c in columns) for row in rows]


def insert_rows(conn: Connection, table: Table, rows: Sequence[tuple], columns: tuple[str, ...]) -> None:
    """Plain insert of tuples in the order of `columns` (that no unique key of the table refuses). On PostgreSQL one
    set-based statement, so it may go in `pipelined` (a COPY may not, and costs two round trips)."""
    if not rows:
        return
    if conn.dialect.name == "postgresql" and len(rows) > 1 and _unnest(conn, table, rows, columns, ""):
        return
    _executemany(conn, _insert_sql(conn.dialect.name, table.name, columns), list(rows))


def insert_ignore(conn: Connection, table: Table, rows: Sequence[Any], columns: tuple[str, ...] | None = None) -> None:
    """Insert rows, skipping those whose primary key exists (replays, concurrent duplicates).

    Rows are dicts with the same keys, or tuples in the order of `columns` (the hot path builds tuples)."""
    if not rows:
        return
    if columns is None:
        columns = tuple(rows[0])
        rows = _params(rows, columns)
    if conn.dialect.name == "postgresql" and _unnest(conn, table, rows, columns, _IGNORE):
        return
    _executemany(conn, _ignore_sql(conn.dialect.name, table.name, columns), list(rows))


def reduce_lww(rows: Iterable[tuple], key_index: Sequence[int], stamp_index: int) -> list[tuple]:
    """Keep, per key, the row with the highest stamp (one row per key per statement: PostgreSQL
    refuses to update the same row twice in one INSERT)."""
    best: dict[Any, tuple] = {}
    key_of = itemgetter(*key_index)
    for row in rows:
        key = key_of(row)
        current = best.get(key)
        if current is None or (row[stamp_index] or "") > (current[stamp_index] or ""):
            best[key] = row
    return list(best.values())


def upsert_lww(
    conn: Connection,
    table: Table,
    rows: Sequence[Any],
    keys: Sequence[str],
    stamp: str,
    updated: Sequence[str],
    columns: tuple[str, ...] | None = None,
    fresh: Callable[[tuple], bool] | None = None,
) -> None:
    """Insert rows; on a key conflict, overwrite `updated` (and `stamp`) only when the incoming stamp is
    higher. Stamps are `merge.stamp(time, event_id)`, so the stored row does not depend on arrival order.
    Rows are dicts, or tuples in the order of `columns`.

    `fresh(row)` True says no stored row can have the row's key (the caller knows, under a lock that every writer
    of the table's keys takes): those rows are a plain INSERT. PostgreSQL's ON CONFLICT checks each row's key
    before inserting it (speculative insertion), a fifth of a batch's stage upsert."""
    if not rows:
        return
    if columns is None:
        columns = tuple(rows[0])
        rows = _params(rows, columns)
    dialect = conn.dialect.name
    key_index = [columns.index(k) for k in keys]
    # one row per key (PostgreSQL refuses to update a row twice in one INSERT, a plain INSERT to insert it twice);
    # SQLite applies upserts row by row, so there the stamp condition alone picks the highest
    if dialect != "sqlite" or fresh is not None:
        rows = reduce_lww(rows, key_index, columns.index(stamp))
    if dialect != "sqlite":
        _sort_by_key(rows, key_index)
    if fresh is not None:
        new: list[tuple] = []
        stored: list[tuple] = []
        for row in rows:
            (new if fresh(row) else stored).append(row)
        if new:
            insert_rows(conn, table, new, columns)
        rows = stored
        if not rows:
            return
    if dialect != "sqlite" and _unnest(conn, table, rows, columns, _conflict_sql(table.name, tuple(keys), stamp,
                                                                               tuple(updated))):
        return
    _executemany(conn, _lww_sql(dialect, table.name, columns, tuple(keys), stamp, tuple(updated)), rows)


def _sort_by_key(rows: list[tuple], key_index: Sequence[int]) -> None:
    """One row order for every batch, so two concurrent upserts of the same keys lock rows in the same order."""
    try:
        rows.sort(key=itemgetter(*key_index))
    except TypeError:  # keys of mixed types: a validated batch has none, and the order is then only less helpful
        pass


@functools.cache
def _array_types(table: Table, columns: tuple[str, ...]) -> tuple[str, ...]:
    dialect = postgresql.dialect()
    return tuple(table.c[c].type.compile(dialect=dialect).split("(")[0] for c in columns)


@functools.cache
def _unnest_sql(table: str, columns: tuple[str, ...], types: tuple[str, ...], conflict: str) -> str:
    """`SELECT unnest($1), unnest($2), ...`: set-returning functions in the select list advance in lockstep
    without being stored; `FROM unnest($1, $2, ...)` first copies each array into a tuple store, which cost
    PostgreSQL more than parsing the arrays (45 columns of 311 stages: 2.4 ms against 1.7 ms)."""
    arrays = ", ".join(f"unnest(%s::{t}[])" for t in types)
    return f"INSERT INTO {_q(table)} ({', '.join(_q(c) for c in columns)}) SELECT {arrays}" + conflict


def _unnest(conn: Connection, table: Table, rows: Sequence[tuple], columns: tuple[str, ...], conflict: str) -> bool:
    """Write `rows` as one statement over one array per column. False (nothing sent) when a value does not
    convert to its column's type: the caller then sends the rows one by one, and the database says which."""
    types = _array_types(table, columns)
    try:
        arrays = tuple(pg_arrays.BUILDERS[type_name](values) for type_name, values in
                       zip(types, zip(*rows, strict=True), strict=True))
    except (KeyError, TypeError, ValueError, OverflowError):
        return False
    with _driver(conn).cursor() as cursor:
        cursor.execute(_unnest_sql(table.name, columns, types, conflict), arrays)
    return True


def _driver(conn: Connection) -> Any:
    """The DBAPI connection under `conn` (in its transaction). On PostgreSQL the bulk writes run on it directly:
    SQLAlchemy's per-statement result set-up cost more client CPU than building the statement, and a write
    inside `pipelined` is only queued there."""
    return conn.connection.driver_connection


def _executemany(conn: Connection, sql: str, rows: list) -> None:
    if conn.dialect.name == "postgresql":
        with _driver(conn).cursor() as cursor:
            if len(rows) == 1:  # psycopg's executemany sets up a pipeline of its own, even for one row
                cursor.execute(sql, rows[0])
            else:
                cursor.executemany(sql, rows)
        return
    conn.exec_driver_sql(sql, rows)


@contextmanager
def pipelined(conn: Connection) -> Iterator[None]:
    """On PostgreSQL, the bulk writes (`insert_rows`, `insert_ignore`, `upsert_lww`, `delete_in`, `execute_many`)
    made inside are sent without waiting for each one's answer (psycopg's pipeline mode), and an error surfaces at
    the end of the block; reads in it only through `read_ahead`. On SQLite nothing changes (the database is
    in-process)."""
    with _driver(conn).pipeline() if conn.dialect.name == "postgresql" else nullcontext():
        yield
