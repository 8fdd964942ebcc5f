"""Fault-suite building blocks shared by tests/reliability and scripts/reliability*.py: a tracker that can be
SIGKILLed and restarted on the same port, a producer process (the real Python client) that reports what it
believes delivered/spooled/dropped, a stdlib asyncio reverse proxy that delays and answers 500s, and DB counts."""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runlink.tracker.process import free_port
from support.postgres import create_database
from support.tracker import Tracker

ROOT = Path(__file__).resolve().parents[2]

PRODUCER = r'''
import json, os, sys, time
from runlink.config import Config
from runlink.delivery import Client
from runlink.protocol.events import make_event
url, token, home, tag, n, seconds, flush = sys.argv[1:8]
n, seconds, flush = int(n), float(seconds), float(flush)
from pathlib import Path
client = Client(Config(url=url, token=token, home=Path(home), batch_size=200, batch_interval_s=0.05,
                       request_timeout_s=5.0, max_retries=3), backoff_max_s=1.0, spool_check_interval_s=0.5)
started = time.monotonic()
for i in range(n):
    client.emit(make_event("metric", {"key": "k", "value": i}, event_id=f"{tag}-{i}",
                           context={"dag_id": f"rel_{tag}", "dag_run_id": "r", "task_id": "t", "try_number": "1"}))
    if seconds:
        time.sleep(max(0.0, started + seconds * (i + 1) / n - time.monotonic()))  # pacing the producer's rate
emitted_s = time.monotonic() - started
ok = client.flush(flush)
print("COUNTERS=" + json.dumps({**client.counters(), "flushed": ok, "emit_s": emitted_s,
                                "total_s": time.monotonic() - started}), flush=True)
client.close(1.0)
'''


def tracker_db_url(backend: str, home: Path) -> str:
    """A fresh PostgreSQL database, or SQLite in `home`."""
    return create_database() if backend == "postgresql" else f"sqlite:///{home / 'runlink.db'}"


def killable_tracker(home: Path, db_url: str | None = None, port: int | None = None,
                     extra: tuple[str, ...] = ()) -> Tracker:
    """A tracker (not started) on a fixed port, so clients keep their URL across a SIGKILL and a restart; no
    rate limit (the faults, not the limiter, are under test)."""
    return Tracker(home, db_url, port=port or free_port(), extra_args=("--rate-limit", "0", *extra),
                   start_deadline_s=90.0)


def record(scenario: str, figures: dict[str, Any]) -> None:
    """Print the figures and add them to $RUNLINK_RELIABILITY_REPORT (scripts/reliability.py's table)."""
    print(f"RELIABILITY {scenario}: {json.dumps(figures)}")
    path = os.environ.get("RUNLINK_RELIABILITY_REPORT")
    if path:
        data = json.loads(Path(path).read_text()) if Path(path).exists() else {}
        data[scenario] = figures
        Path(path).write_text(json.dumps(data, indent=1))


def start_producer(url: str, token: str, home: Path, tag: str, n: int, seconds: float,
                   flush_s: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "python"), "RUNLINK_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", PRODUCER, url, token, str(home), tag, str(n), str(seconds),
                             str(flush_s)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def producer_result(process: subprocess.Popen, timeout: float = 600) -> dict[str, Any]:
    out, err = process.communicate(timeout=timeout)
    line = next((x for x in out.splitlines() if x.startswith("COUNTERS=")), None)
    if process.returncode != 0 or line is None:
        raise AssertionError(f"producer failed rc={process.returncode}\n{out[-2000:]}\n{err[-4000:]}")
    return json.loads(line[len("COUNTERS="):])


def db_counts(db_url: str, tag: str) -> dict[str, int]:
    """Events stored for a producer tag, distinct ids, and metric rows (an entity doubled would show here)."""
    from sqlalchemy import create_engine, text

    from runlink.tracker.settings import normalize_db_url

    engine = create_engine(normalize_db_url(db_url))
    try:
        with engine.connect() as conn:
            like = {"p": f"{tag}-%"}
            events = conn.execute(text("SELECT COUNT(*) FROM events WHERE id LIKE :p"), like).scalar()
            distinct = conn.execute(text("SELECT COUNT(DISTINCT id) FROM events WHERE id LIKE :p"), like).scalar()
            metric_rows = conn.execute(text("SELECT COUNT(*) FROM metrics WHERE id LIKE :p"), like).scalar()
            all_events = conn.execute(text("SELECT COUNT(*) FROM events")).scalar()
            all_distinct = conn.execute(text("SELECT COUNT(DISTINCT id) FROM events")).scalar()
    finally:
        engine.dispose()
    return {"events": events, "distinct": distinct, "metric_rows": metric_rows, "all_events": all_events,
            "all_distinct": all_distinct}


def wait_counts(db_url: str, tag: str, want: int, deadline_s: float = 120) -> dict[str, int]:
    deadline = time.monotonic() + deadline_s
    counts = db_counts(db_url, tag)
    while counts["events"] < want and time.monotonic() < deadline:
        time.sleep(0.5)  # polling interval; the condition is the stored count
        counts = db_counts(db_url, tag)
    return counts


class FaultyProxy:
    """A reverse proxy (stdlib asyncio) in front of a real tracker: each request waits `delay_s`, and a share
    `error_rate` of them is answered 500 without reaching the tracker. Connection: close per request."""

    def __init__(self, upstream_port: int, delay_s: float, error_rate: float, seed: int = 7,
                 fails: Any = None) -> None:
        self.upstream_port, self.delay_s, self.error_rate = upstream_port, delay_s, error_rate
        #: `fails(body) -> bool`: a batch the "tracker" always answers 500 (a poisoned batch)
        self.fails = fails
        self.poisoned = 0
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests = self.errors = 0
        self._random = random.Random(seed)
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            lines = head.split(b"\r\n")
            kept = [lines[0]]
            for line in lines[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
                if line and not line.lower().startswith(b"connection:"):
                    kept.append(line)
            body = await reader.readexactly(length) if length else b""
            self.requests += 1
            await asyncio.sleep(self.delay_s)
            poisoned = self.fails is not None and self.fails(body)
            self.poisoned += poisoned
            if poisoned or self._random.random() < self.error_rate:
                self.errors += 1
                writer.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
                             b"error")
            else:
                up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
                up_writer.write(b"\r\n".join(kept) + b"\r\nConnection: close\r\n\r\n" + body)
                await up_writer.drain()
                writer.write(await up_reader.read())
                up_writer.close()
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
