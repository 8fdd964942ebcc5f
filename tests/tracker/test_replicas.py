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
from support.waiting import wait_for


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


def _unread_bytes(server_port: int, client_port: int) -> int | None:
    """Bytes of one connection the server has not read yet: still queued on the client's side (tx_queue) or
    waiting on the server's (rx_queue), from /proc/net/tcp; None while either side is not listed."""
    unread: dict[str, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote = int(fields[1].split(":")[1], 16), int(fields[2].split(":")[1], 16)
        tx_queue, rx_queue = (int(q, 16) for q in fields[4].split(":"))
        if (local, remote) == (server_port, client_port):
            unread["server"] = rx_queue
        elif (local, remote) == (client_port, server_port):
            unread["client"] = tx_queue
    return sum(unread.values()) if len(unread) == 2 else None


def _send(tracker: Tracker, batch: list[dict]) -> http.client.HTTPConnection:
    connection = http.client.HTTPConnection("127.0.0.1", tracker.port, timeout=120)
    connection.request("POST", "/api/v1/events", body=json.dumps({"events": batch}),
                       headers={"Content-Type": "application/json", **tracker.headers()})
    return connection


@pytest.mark.parametrize("workers", [1, 2])
def test_a_stopping_replica_finishes_the_batches_in_flight(tmp_path: Path, workers: int) -> None:
    """SIGTERM while a batch is being stored: it is answered 202 and stored whole (uvicorn's graceful shutdown;
    with --workers the supervisor forwards the signal); batches the server had not begun reading are refused
    (the connection closes: the agent retries) and nothing of them is stored; then the process exits."""
    tracker = Tracker(tmp_path / "home", workers=workers).start()
    batches = [[event("metric", {"key": f"k{n}", "value": i}, context={"dag_id": f"drain_{n}"})
                for i in range(4000)] for n in range(4)]
    connections = []
    outcomes: list[int | str] = []
    try:
        connections.append(_send(tracker, batches[0]))
        client_port = connections[0].sock.getsockname()[1]
        wait_for(lambda: _unread_bytes(tracker.port, client_port) == 0, "the server read the first batch")
        connections += [_send(tracker, batch) for batch in batches[1:]]
        tracker.process.send_signal(signal.SIGTERM)
        for connection in connections:
            try:
                outcomes.append(connection.getresponse().status)
            except (ConnectionError, http.client.HTTPException) as exc:
                outcomes.append(type(exc).__name__)
        # uvicorn re-raises the signal once drained (exit by SIGTERM); the supervisor exits 0
        assert tracker.process.wait(timeout=60) in (0, -signal.SIGTERM), tracker.log_tail()
    finally:
        for connection in connections:
            connection.close()
        tracker.stop()
    assert outcomes[0] == 202, outcomes
    engine = create_engine(tracker.db_url)
    try:
        with engine.connect() as conn:
            stored = dict(conn.execute(text("SELECT key, COUNT(*) FROM metrics GROUP BY key")).all())
    finally:
        engine.dispose()
    for n, outcome in enumerate(outcomes):  # whole or nothing, as answered
        assert stored.get(f"k{n}", 0) == (len(batches[n]) if outcome == 202 else 0), (n, outcome)
