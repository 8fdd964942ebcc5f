"""Engine creation (SQLite pragmas, PostgreSQL pool) and the Alembic upgrade that runs at start."""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, nullcontext
from hashlib import blake2b
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, DisconnectionError

from runlink.tracker import pg_arrays
from runlink.tracker.settings import check_durability

T = TypeVar("T")

MIGRATIONS = Path(__file__).with_name("migrations")


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


WAL_AUTOCHECKPOINT_PAGES = 10_000


def make_engine(url: str, durability: str = "normal") -> Engine:
    """An engine tuned per backend: SQLite in WAL, synchronous=NORMAL unless `durability` is full."""
    sync = "FULL" if check_durability(durability) == "full" else "NORMAL"
    if url.startswith("sqlite"):
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_conn, _record) -> None:  # noqa: ANN001 - DBAPI objects are untyped
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={sync}")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA temp_store=MEMORY")
            cursor.execute("PRAGMA cache_size=-65536")
            # checkpoint every ~40 MB of WAL instead of 4 MB: a batch dirties hundreds of (random) event-id
            # index pages, and rarer checkpoints copy each hot page once instead of once per batch or two
            cursor.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            cursor.close()

        return engine
    # LIFO: under load the same few connections serve every batch, so their prepared statements stay hot. Prepared
    # at first use (psycopg's default is the sixth): ingest's statements repeat for the connection's life, and each
    # new connection (at start, after a restart of the database, an overflow one) parsed and planned each of them six
    # times, 6% of PostgreSQL's CPU in bench_ingest's 100,000 events
    engine = create_engine(url, pool_size=8, max_overflow=8, pool_use_lifo=True,
                           connect_args={"prepare_threshold": 0})
    _ping_when_idle(engine)
    return engine


#: a pooled connection idle longer than this is pinged before use (a server restart may have closed it)
PING_IDLE_S = 2.0


def _ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only when it sat idle for `PING_IDLE_S`: SQLAlchemy's pre-ping paid
    a round trip on every checkout (3-4 per ingest batch), while a busy pool reuses its connections within
    milliseconds. A connection lost between two busy uses fails its statement instead; SQLAlchemy then replaces
    the whole pool, and `Database.transact` runs the write again."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:  # noqa: ANN001 - pool objects are untyped
        record.info["returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping(dbapi_conn, record, _proxy) -> None:  # noqa: ANN001
        returned = record.info.get("returned_at")
        if returned is None or time.monotonic() - returned < PING_IDLE_S:  # new, or busy a moment ago
            return
        try:
            engine.dialect.do_ping(dbapi_conn)
        except Exception as error:
            if engine.dialect.is_disconnect(error, dbapi_conn, None):
                raise DisconnectionError(str(error)) from error  # the pool reconnects and checks out again
            raise


def _alembic_config():  # noqa: ANN202 - alembic is imported lazily
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


#: PostgreSQL advisory lock key held (for its transaction) by the replica that runs the migrations
PG_MIGRATE_LOCK = 0x6D696772


def upgrade(engine: Engine) -> None:
    """Bring the database to the latest migration (idempotent; safe at every start). Replicas starting together
    take turns: on PostgreSQL the upgrade's transaction first takes an advisory lock (the others wait on it, then
    find the schema at head and do nothing); on a SQLite file, a lock file beside the database does the same."""
    from alembic import command

    cfg = _alembic_config()
    database = engine.url.database or ""
    file_lock = _FileLock(Path(database + ".migrate.lock")) \
        if is_sqlite(engine) and database not in ("", ":memory:") else nullcontext()
    with file_lock, engine.begin() as conn:
        if not is_sqlite(engine):
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATE_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def migration_state(conn: Connection) -> tuple[str | None, str]:
    """(the database's Alembic revision, the code's head): the schema is current when they are equal."""
    from alembic.migration import MigrationContext

    return MigrationContext.configure(conn).get_current_revision(), _head_revision()


@functools.cache
def _head_revision() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None, "the migrations folder has no head"
    return head


#: PostgreSQL advisory lock key of all tracker writes: held shared by a keyed write (ingest, retention, the
#: alert worker, token bookkeeping), exclusively by a write that may touch anything (token and alias changes,
#: alert rule edits), across worker processes and replicas
PG_WRITE_LOCK = 0x72756E6C
#: the key of the alert worker's writes (alerts and their notifications), and of retention, which deletes alerts
ALERTS_KEY = "alerts"
#: SQLSTATEs after which a whole transaction is simply run again (deadlock_detected, serialization_failure)
RETRYABLE = frozenset({"40P01", "40001"})
RETRIES = 5
#: SQLSTATEs of a connection the server ended (admin_shutdown, crash_shutdown, cannot_connect_now); class 08 is
#: every other connection exception
_SERVER_ENDED = frozenset({"57P01", "57P02", "57P03"})


_LOCK_ALL = "SELECT pg_advisory_xact_lock(%s)"
_LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(%s)"
#: a batch's keys, taken in ascending order (the subquery's): two writes never wait for each other crosswise
_LOCK_KEYS = "SELECT count(pg_advisory_xact_lock(k)) FROM (SELECT unnest(%s::bigint[]) AS k ORDER BY k) AS ordered"
#: a keyed write (ingest) only looks rows up by key. Without this a young database's statistics made a prepared
#: lookup's generic plan a sequential scan, kept for the connection's life: ingest's duplicate check then compared
#: every stored event with each of the batch's 500 hashes (99 ms a batch at 100,000 events instead of 12).
#: And generic plans only: a lookup of a few keys (`= ANY(array)`) was estimated cheaper with the array's length
#: known, so PostgreSQL planned it anew at every execution (custom plans), a quarter of the server's statement time
#: in ingest; with sequential scans off, the generic plan is the index lookup the custom one was.
_KEY_LOOKUPS = ("SELECT set_config('enable_seqscan', 'off', true), "
                "set_config('plan_cache_mode', 'force_generic_plan', true)")
#: durability "normal": COMMIT answers before its WAL reaches the disk (the WAL writer flushes it within
#: 3 x wal_writer_delay). A batch's CPU is the same, but its connection and its DAG locks no longer wait for the
#: disk, which left the cores idle at times: +6% ingest on this machine's 2 cores (bench_ingest --durability).
_ASYNC_COMMIT = "SET LOCAL synchronous_commit = off"


def lock_key(name: str) -> int:
    """The signed 64-bit advisory lock key of a name such as `dag:<dag_id>` (the same in every process)."""
    return int.from_bytes(blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def retryable(error: BaseException) -> bool:
    """A PostgreSQL deadlock or serialization failure, or a connection lost under the transaction: it did not
    commit (or, lost at COMMIT, ingest's dedupe makes the second run a no-op) and can run again. Raised through
    SQLAlchemy (a DBAPIError) or by the driver itself (the bulk writes run on it directly)."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return True
    orig = error.orig if isinstance(error, DBAPIError) else error
    state = getattr(orig, "sqlstate", None)
    if state is None:  # psycopg's own error when the socket broke (no server answer to carry a state)
        import psycopg

        return isinstance(orig, psycopg.OperationalError)
    return state in RETRYABLE or state in _SERVER_ENDED or state.startswith("08")


class _FileLock:
    """An exclusive flock: SQLite writers of several worker processes queue on it instead of sleeping in
    SQLite's busy handler."""

    def __init__(self, path: Path):
        self.path = path

    def __enter__(self) -> None:
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *_exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)


class Database:
    """The engine plus write serialization. On SQLite every write is serialized (a thread lock plus a file lock
    across worker processes): it has one writer anyway. On PostgreSQL a write names what it locks: `keys` (an
    ingest batch's `dag:<dag_id>`s...) are transaction-scoped advisory locks taken in sorted order (no deadlock
    between them), under a shared hold of PG_WRITE_LOCK; writes of disjoint keys run in parallel, in any
    process or replica, while those of one key (relinks of one dag_id) take turns. A write without keys holds
    PG_WRITE_LOCK exclusively: it waits for, and excludes, every other write, and every write that comes after
    it queues behind it, so background bookkeeping of its own rows passes keys (`()`: row locks suffice)."""

    def __init__(self, url: str, durability: str = "normal"):
        self.url = url
        self.engine = make_engine(url, durability)  # checks the level
        self.durability = durability
        self.sqlite = is_sqlite(self.engine)
        self._write_lock = threading.Lock()
        self._file_lock = None
        if self.sqlite and url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            self._file_lock = _FileLock(Path(url[len("sqlite:///"):] + ".lock"))

    @contextmanager
    def write(self, keys: Iterable[str] | None = None) -> Iterator[Connection]:
        """One write transaction (BEGIN IMMEDIATE on SQLite so readers never block the upgrade to writer),
        holding the locks of `keys` (None: all). The time spent waiting for them is in
        `conn.info["lock_wait_s"]`."""
        began = time.perf_counter()
        if self.sqlite:
            with self._write_lock, self._file_lock or nullcontext(), self.engine.connect() as conn:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                conn.info["lock_wait_s"] = time.perf_counter() - began
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.commit()
        else:
            # BEGIN is sent by hand, with the locks, in one round trip: psycopg's own BEGIN (on a connection outside
            # autocommit) syncs a pipeline before its first statement, a round trip of its own
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                driver = conn.connection.driver_connection
                try:
                    with driver.pipeline():
                        driver.execute("BEGIN")
                        if keys is None:
                            driver.execute(_LOCK_ALL, (PG_WRITE_LOCK,))
                        else:
                            driver.execute(_LOCK_SHARED, (PG_WRITE_LOCK,))
                            driver.execute(_LOCK_KEYS, (pg_arrays.bigints(list({lock_key(key) for key in keys})),))
                            driver.execute(_KEY_LOOKUPS)
                        if self.durability == "normal":
                            driver.execute(_ASYNC_COMMIT)
                    conn.info["lock_wait_s"] = time.perf_counter() - began
                    yield conn
                    driver.commit()
                except BaseException:
                    if driver.broken:  # the server is gone: the pool drops the connection, a retry takes another
                        conn.invalidate()
                    else:
                        driver.rollback()  # psycopg sends ROLLBACK whenever the server's transaction is open
                    raise

    def transact(self, keys: Iterable[str] | None, work: Callable[[Connection], T]) -> T:
        """`work(conn)` in a `write(keys)` transaction, run again (a few times) when PostgreSQL rolled it back
        for a deadlock or a serialization failure: concurrent upserts of shared rows (a dataset, an
        instance) by batches of different DAGs can meet in opposite orders."""
        keys = None if keys is None else list(keys)
        for attempt in range(RETRIES):
            try:
                with self.write(keys) as conn:
                    return work(conn)
            except Exception as error:
                if attempt == RETRIES - 1 or not retryable(error):
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def session_lease(self, key: int, *, wait: bool = False) -> Iterator[Connection | None]:
        """PostgreSQL only: a session advisory lock on `key`, one holder across the worker processes and
        replicas of a tracker, for background work that must not run twice at once (retention, statistics).
        Yields an autocommit connection holding it, or None when another holds it; with `wait`, waits for it."""
        take = "pg_advisory_lock" if wait else "pg_try_advisory_lock"
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.exec_driver_sql(f"SELECT {take}({key})").scalar_one() is False:  # pg_advisory_lock: void
                yield None
                return
            try:
                yield conn
            finally:
                conn.exec_driver_sql(f"SELECT pg_advisory_unlock({key})")

    @contextmanager
    def read(self) -> Iterator[Connection]:
        """A connection for reads. On PostgreSQL it runs without a transaction: at READ COMMITTED each statement
        reads its own snapshot anyway, and psycopg's BEGIN and COMMIT were two more round trips per read. On
        SQLite the read's statements share one snapshot, ended by COMMIT. Never by the pool's ROLLBACK: psycopg
        forgets every prepared statement of a connection at a ROLLBACK, so one read between two batches made
        ingest's statements be parsed and planned anew on every batch."""
        if self.sqlite:
            with self.engine.connect() as conn:
                yield conn
                if conn.in_transaction():
                    conn.commit()
        else:
            with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                yield conn

    def dispose(self) -> None:
        self.engine.dispose()
