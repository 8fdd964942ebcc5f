"""Planner statistics on a PostgreSQL server without autovacuum: the tracker analyzes its tables as they grow, so
ingest's duplicate check (`id_hash = ANY(<500 hashes>)`) uses its index instead of reading every stored event."""

from __future__ import annotations

import pytest
from sqlalchemy import Connection

from runlink.protocol import make_event
from runlink.tracker import pg_arrays, table_statistics
from runlink.tracker.db import Database
from runlink.tracker.ingest.pipeline import check
from runlink.tracker.ingest.rows import collect
from runlink.tracker.ingest.store import lock_keys, store
from support.postgres import migrated_database

pytestmark = pytest.mark.postgres

_LOOKUP = "SELECT id FROM events WHERE id_hash = ANY(%s::bigint[])"


@pytest.fixture
def db():
    with migrated_database() as database:
        yield database


def _ingest(db: Database, n: int) -> list[int]:
    """`n` metric events of one task, stored in batches of 500; returns the id hashes of the last batch."""
    context = {"dag_id": "stats_dag", "dag_run_id": "manual__1", "task_id": "t", "try_number": "1", "uid": "i"}
    hashes: list[int] = []
    for start in range(0, n, 500):
        prepared = check({"events": [make_event("metric", {"key": f"m{i}", "value": i}, context=context)
                                     for i in range(start, min(n, start + 500))]}, 1000)
        rows = collect(prepared)
        with db.write(lock_keys(prepared, rows)) as conn:
            store(conn, prepared, rows)
        hashes = list(prepared.hashes.values())
    return hashes


def _plan(db: Database, hashes: list[int]) -> str:
    with db.engine.connect() as conn:
        return _explain(conn, hashes)


def _explain(conn: Connection, hashes: list[int]) -> str:
    """The plan of the duplicate check for `hashes` on `conn` (in whatever transaction it is in)."""
    driver = conn.connection.driver_connection
    return "\n".join(row[0] for row in driver.execute("EXPLAIN " + _LOOKUP, (pg_arrays.ints(hashes),)))


def _grow_events(db: Database, n: int) -> None:
    """`n` more stored events, written by SQL (what months of ingest leave behind, in a second)."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO events (id, id_hash) SELECT md5(i::text), "
            f"('x' || substr(md5(i::text), 1, 16))::bit(64)::bigint FROM generate_series(1, {n}) AS i")


def test_a_grown_table_is_analyzed_and_the_lookup_takes_its_index(db):
    hashes = _ingest(db, 1000)
    _grow_events(db, 200_000)
    assert "Seq Scan on events" in _plan(db, hashes)  # what every batch did without statistics

    analyzed = table_statistics.analyze_stale(db, always=True)
    assert {"events", "metrics"} <= set(analyzed)
    plan = _plan(db, hashes)
    assert "ix_events_id_hash" in plan and "Seq Scan" not in plan, plan

    assert table_statistics.analyze_stale(db, always=True) == []  # not again until the table is 4x as large
    _grow_events(db, 250_000)
    assert "events" not in table_statistics.analyze_stale(db, always=True)
    _grow_events(db, 400_000)
    assert "events" in table_statistics.analyze_stale(db, always=True)


@pytest.fixture
def autovacuum_on(monkeypatch):
    """As on a server with autovacuum on (its default), whatever this server's setting."""
    monkeypatch.setattr(table_statistics, "autovacuum_on", lambda conn: True)


def test_with_autovacuum_on_the_tracker_gives_young_tables_their_first_statistics_only(db, autovacuum_on):
    """Autovacuum looks once a minute: until then a new database's duplicate check may keep a plan that reads
    every stored event. The tracker analyzes a table without statistics at once, then leaves it to autovacuum."""
    _ingest(db, 1500)
    assert {"events", "metrics"} <= set(table_statistics.analyze_stale(db))
    _grow_events(db, 200_000)
    assert table_statistics.analyze_stale(db) == []  # growth: autovacuum's
    assert "events" in table_statistics.analyze_stale(db, always=True)


def test_a_plan_made_while_events_was_young_is_replaced_by_its_first_statistics(db, autovacuum_on):
    """The trap that first statistics close: a connection prepares the duplicate check while `events` is a few
    pages, PostgreSQL keeps that sequential scan as its generic plan, and every later batch compares each stored
    event with each of its 500 hashes (176 ms per lookup at 100,000 events, against under 1 ms by the index)."""
    hashes = _ingest(db, 500)
    literal = pg_arrays.ints(hashes)
    with db.engine.connect() as conn:
        driver = conn.connection.driver_connection
        driver.autocommit = True
        driver.execute("PREPARE duplicates(bigint[]) AS SELECT id FROM events WHERE id_hash = ANY($1)")
        for _ in range(6):  # the sixth execution settles on the generic plan
            driver.execute(f"EXECUTE duplicates('{literal}')")
        _grow_events(db, 100_000)

        def plan() -> str:
            return "\n".join(row[0] for row in driver.execute(f"EXPLAIN EXECUTE duplicates('{literal}')"))

        assert "Seq Scan on events" in plan()
        assert "events" in table_statistics.analyze_stale(db)
        assert "ix_events_id_hash" in plan() and "Seq Scan" not in plan(), plan()


def test_a_keyed_write_looks_events_up_by_their_index_without_statistics(db):
    """Ingest's writes only look rows up by key, so they never take a plan that scans, statistics or not: nor
    does a generic plan a connection prepares inside them while a table is young."""
    hashes = _ingest(db, 500)
    _grow_events(db, 100_000)
    assert "Seq Scan on events" in _plan(db, hashes)
    with db.write(["dag:stats_dag"]) as conn:
        plan = _explain(conn, hashes)
    assert "ix_events_id_hash" in plan and "Seq Scan" not in plan, plan
