"""The PostgreSQL connection pool: reads keep psycopg's prepared statements, a connection is pinged only after
sitting idle, and a write whose connection was lost runs again on a new one."""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import Connection

from runlink.tracker import db as db_module
from runlink.tracker.db import Database
from runlink.tracker.sqlutil import run
from support.postgres import migrated_database, postgres_admin_url

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def database() -> Iterator[Database]:
    with migrated_database() as database:
        yield database


def _backend_pid(database: Database) -> int:
    with database.read() as conn:
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()


def _terminate(pid: int) -> None:
    """End a server backend as a server restart would, and wait (with a deadline) until it is gone."""
    with psycopg.connect(postgres_admin_url(), autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]
        deadline = time.monotonic() + 10
        while admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()[0]:
            assert time.monotonic() < deadline, f"backend {pid} still there"
            time.sleep(0.05)


def test_reads_between_uses_keep_the_prepared_statements(database: Database) -> None:
    """psycopg forgets a connection's prepared statements at every ROLLBACK: reads must end with COMMIT, or
    ingest's statements are parsed and planned anew on every batch."""
    statement = "SELECT count(*) FROM events WHERE id_hash = ?"
    for n in range(8):  # psycopg prepares a statement at its 5th run on a connection
        with database.read() as conn:
            run(conn, statement, (n,)).scalar_one()
    with database.read() as conn:
        prepared = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").scalars().all()
    assert any("FROM events WHERE id_hash" in text for text in prepared), prepared


def test_a_connection_lost_while_idle_is_replaced_before_use(database: Database,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_S", 0.0)  # every pooled connection counts as idle
    lost = _backend_pid(database)
    _terminate(lost)
    assert _backend_pid(database) != lost  # the ping found it closed; the pool connected again


def test_a_write_on_a_connection_lost_between_uses_runs_again(database: Database,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db_module, "PING_IDLE_S", 3600.0)  # no ping: the write meets the closed connection
    lost = _backend_pid(database)
    _terminate(lost)
    errors: list[BaseException] = []
    judge = db_module.retryable
    monkeypatch.setattr(db_module, "retryable", lambda error: errors.append(error) or judge(error))

    def work(conn: Connection) -> int:
        run(conn, "INSERT INTO instances (uid, first_seen) VALUES (?, ?)", ("lost-once", "2026-12-04T00:00:00Z"))
        return conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()

    assert database.transact(["dag:x"], work) != lost
    # the first try failed on the lost connection (psycopg's error: BEGIN and the locks go to it directly)
    assert len(errors) == 1 and isinstance(errors[0], psycopg.OperationalError), errors
    with database.read() as conn:
        assert run(conn, "SELECT count(*) FROM instances WHERE uid = ?", ("lost-once",)).scalar_one() == 1


def test_a_driver_error_on_a_closed_connection_is_retryable(database: Database) -> None:
    """The bulk writes and the locks run on psycopg directly: its own error on a lost connection counts too."""
    with psycopg.connect(postgres_admin_url()) as conn:
        _terminate(conn.execute("SELECT pg_backend_pid()").fetchone()[0])
        with pytest.raises(psycopg.OperationalError) as raised:
            conn.execute("SELECT 1")
    assert db_module.retryable(raised.value)  # the server's admin_shutdown (57P01)
    assert db_module.retryable(psycopg.OperationalError("consuming input failed"))  # a socket that broke
    assert not db_module.retryable(psycopg.errors.UniqueViolation("duplicate key"))
    assert not db_module.retryable(ValueError("not a database error"))
