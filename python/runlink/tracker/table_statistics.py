"""Planner statistics where PostgreSQL's autovacuum does not keep them: a tracker table is analyzed once it has
grown past a few pages, and again each time it has grown fourfold.

Why: without statistics PostgreSQL assumes one row in 200 matches any value, so it plans ingest's duplicate check
(`id_hash = ANY(<500 hashes>)`) as a sequential scan of all events, and every batch reads the whole table; the
lookups of linking (contexts, state events, runs) go the same way as history grows. Autovacuum analyzes tables as
they grow. Where it is off (the server's `autovacuum` setting), the tracker does the analyzing part of its job and
no more: dead rows stay VACUUM's, which the README's production section leaves to the DBA.

With autovacuum on, the tracker still gives a young table its first statistics. Autovacuum looks once a minute
(`autovacuum_naptime`), and until then a new database's prepared duplicate check can keep a plan made while
`events` was a few pages: a sequential scan comparing every row with each of the batch's 500 hashes, whose cost
grows with every batch (176 ms a lookup at 100,000 events, against under 1 ms by the index). The first ANALYZE
replaces that plan everywhere; from then on autovacuum keeps the statistics. SQLite needs none of it: its
planner takes an index without statistics.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Connection

from runlink.tracker.db import Database

log = logging.getLogger(__name__)

#: PostgreSQL session advisory lock key held while one process (of all workers and replicas) analyzes
PG_STATISTICS_LOCK = 0x72756E73
#: a table is analyzed from this size on (8 kB pages; under it any plan is cheap)
MIN_PAGES = 16
#: how often each tracker process looks (one query on pg_class)
POLL_S = 2.0
#: rows sampled per table are 300 times this: coarse statistics (an id is unique, a dag_id repeats) are what the
#: tracker's plans turn on, and at PostgreSQL's default of 100 one ANALYZE of the 45-column stages table cost
#: 300 ms of server CPU
STATISTICS_TARGET = 10

#: a table is analyzed again once this many times its size at the last analysis. The planner scales the stored
#: row counts by the table's current size, so what ages is only the shape of the columns (how often a dag_id
#: repeats), which history does not change quickly; at 2 a young database spent a tenth of PostgreSQL's ingest
#: CPU in ANALYZE
GROWTH = 4

#: size on disk against the size at the last analysis (`relpages`, 0 before the first): immediate, where the
#: cumulative statistics' change counts reach other sessions a second or more late
_STALE = """
SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname = ANY (current_schemas(false))
  AND pg_relation_size(c.oid) / current_setting('block_size')::int >= GREATEST(%(min_pages)s, %(growth)s * c.relpages)
  AND (%(growth_too)s OR NOT EXISTS (SELECT 1 FROM pg_stats s WHERE s.schemaname = n.nspname
                                                               AND s.tablename = c.relname))
ORDER BY c.relname
"""


def autovacuum_on(conn: Connection) -> bool:
    """The server's `autovacuum` setting."""
    return conn.exec_driver_sql("SHOW autovacuum").scalar_one() == "on"


def analyze_stale(db: Database, *, always: bool = False) -> list[str]:
    """ANALYZE the tables past MIN_PAGES that have no statistics yet, and, when autovacuum is off (or `always`),
    those grown GROWTH-fold since their last analysis. Returns their names; nothing on SQLite, or while another
    process holds the lease."""
    if db.sqlite:
        return []
    with db.session_lease(PG_STATISTICS_LOCK) as conn:
        if conn is None:
            return []
        growth_too = always or not autovacuum_on(conn)
        stale = [row[0] for row in conn.exec_driver_sql(_STALE, {"growth_too": growth_too, "min_pages": MIN_PAGES,
                                                                 "growth": GROWTH})]
        if stale:
            conn.exec_driver_sql(f"SET default_statistics_target = {STATISTICS_TARGET}")
            try:
                for table in stale:
                    conn.exec_driver_sql(f'ANALYZE "{table}"')
            finally:
                conn.exec_driver_sql("RESET default_statistics_target")  # the connection goes back to the pool
    return stale


class StatisticsKeeper:
    """A daemon thread per tracker process that runs `analyze_stale` every POLL_S seconds (PostgreSQL only)."""

    def __init__(self, db: Database, poll_s: float = POLL_S) -> None:
        self.db = db
        self.poll_s = poll_s
        self._warned = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runlink-statistics", daemon=True)

    def start(self) -> None:
        if not self.db.sqlite:
            self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _autovacuum(self) -> bool:
        with self.db.read() as conn:
            return autovacuum_on(conn)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                analyzed = analyze_stale(self.db)
            except Exception:  # noqa: BLE001 - planner statistics are an optimization; the next poll tries again
                log.warning("runlink: analyzing tables for the planner failed", exc_info=True)
                continue
            if analyzed and not self._warned and not self._autovacuum():
                self._warned = True
                log.warning("runlink: PostgreSQL's autovacuum is off, so the tracker analyzes its tables as they "
                            "grow (%s); VACUUM is still the database's to run", ", ".join(analyzed))
