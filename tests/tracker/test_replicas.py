"""Several replicas of the tracker: they start together on one empty PostgreSQL database (one migrates, the others
wait and find the schema at head), and /readyz says whether a replica can take traffic (/livez needs no database).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, text

from runlink.tracker.db import migration_state, upgrade
from support.postgres import create_database, drop_database
from support.tracker import Tracker


@pytest.fixture
def empty_pg() -> str:
    url = create_database()
    yield url
    drop_database(url)


@pytest.mark.postgres
def test_two_replicas_start_together_on_an_empty_database(empty_pg: str, tmp_path: Path) -> None:
    replicas = [Tracker(tmp_path / f"replica-{n}", empty_pg) for n in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:  # both launched at once: their migrations would race without the lock
            list(pool.map(lambda r: r.start(), replicas))
        for replica in replicas:
            ready = requests.get(replica.url + "/readyz", timeout=10)
            assert ready.status_code == 200, (ready.text, replica.log_tail())
            assert requests.get(replica.url + "/livez", timeout=10).status_code == 200
        engine = create_engine(empty_pg)
        try:
            with engine.connect() as conn:
                versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
                _, head = migration_state(conn)
        finally:
            engine.dispose()
        assert versions == [head]
        for replica in replicas:  # both serve: each stores a batch
            answer = replica.post_events([])
            assert answer.status_code in (202, 422), answer.text
    finally:
        for replica in replicas:
            replica.stop()


@pytest.mark.postgres
def test_concurrent_upgrades_take_turns(empty_pg: str) -> None:
    """Four upgrades released at the same instant on an empty database: all succeed (without the advisory lock
    the losers fail on tables the winner created meanwhile)."""
    gate = threading.Barrier(4)
    engines = [create_engine(empty_pg) for _ in range(4)]

    def migrate(engine) -> None:  # noqa: ANN001
        gate.wait(timeout=30)
        upgrade(engine)

    try:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(migrate, engines))
        with engines[0].connect() as conn:
            current, head = migration_state(conn)
            assert current == head
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
    finally:
        for engine in engines:
            engine.dispose()


def test_readyz_answers_503_while_the_schema_is_behind(tmp_path: Path) -> None:
    tracker = Tracker(tmp_path / "home").start()
    engine = create_engine(tracker.db_url)
    try:
        assert tracker.get("/readyz", token=None).status_code == 200
        with engine.begin() as conn:
            head = conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            conn.execute(text("UPDATE alembic_version SET version_num = '0005_event_batches'"))
        behind = tracker.get("/readyz", token=None)
        assert behind.status_code == 503 and "0005_event_batches" in behind.json()["reason"]
        assert tracker.get("/livez", token=None).status_code == 200  # alive: no restart, just no traffic
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = :head"), {"head": head})
        assert tracker.get("/readyz", token=None).status_code == 200
    finally:
        engine.dispose()
        tracker.stop()
