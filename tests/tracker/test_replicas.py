"""Several replicas of the tracker: they start together on one empty PostgreSQL database (one migrates, the others
wait and find the schema at head), /readyz says whether a replica can take traffic (/livez needs no database), and
a replica told to stop finishes the batches it is storing first.
"""

from __future__ import annotations

import http.client
import json
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from builders import event
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


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopping_replica_finishes_the_batches_in_flight(tmp_path: Path, workers: int) -> None:
    """SIGTERM while batches are being stored: each one sent before it is answered 202 and stored whole (uvicorn's
    graceful shutdown; with --workers the supervisor forwards the signal), then the process exits."""
    tracker = Tracker(tmp_path / "home", workers=workers).start()
    batches = [[event("metric", {"key": f"k{n}", "value": i}, context={"dag_id": f"drain_{n}"})
                for i in range(4000)] for n in range(4)]
    connections = []
    try:
        for batch in batches:  # every request fully sent (body and all) before the signal
            connection = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=120)
            connection.request("POST", "/api/v1/events", body=json.dumps({"events": batch}),
                               headers={"Content-Type": "application/json", **tracker.headers()})
            connections.append(connection)
        tracker.process.send_signal(signal.SIGTERM)
        statuses = [connection.getresponse().status for connection in connections]
        # uvicorn re-raises the signal once drained (exit by SIGTERM); the supervisor exits 0
        assert tracker.process.wait(timeout=60) in (0, -signal.SIGTERM), tracker.log_tail()
    finally:
        for connection in connections:
            connection.close()
        tracker.stop()
    assert statuses == [202] * len(batches)
    engine = create_engine(tracker.db_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT COUNT(*) FROM metrics WHERE key LIKE 'k%'")).scalar_one()
    finally:
        engine.dispose()
    assert stored == sum(len(batch) for batch in batches)
