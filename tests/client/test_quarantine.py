"""Nothing a tracker answers can wedge delivery: 4xx batches are quarantined (never retried, never lost silently),
a batch the tracker keeps failing on is set aside then quarantined while the rest of the spool drains, a tracker
failing for every batch is treated as down (nothing quarantined), an unreachable tracker gets the burst spooled at
once, the exit flush replays the spool, and the spool is one folder per tracker. Real local HTTP servers and real
child processes; the end-to-end figures against a real tracker are in tests/reliability/test_poisoned_spool.py."""

from __future__ import annotations

import gzip
import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from delivery_config import delivery_config
from servers import RecordingServer

from runlink.delivery import QUARANTINE_AFTER, Client
from runlink.protocol import make_event
from runlink.spool import Spool, spool_key
from runlink.tracker.process import free_port
from support.waiting import wait_for


def _spool(home: Path, url: str) -> Spool:
    return Spool(home / "spool" / spool_key(url), 10**9)


def _body(*keys: str) -> bytes:
    events = [make_event("metric", {"key": key, "value": 1}) for key in keys]
    return gzip.compress(json.dumps({"events": events}).encode())


def _keys(server: RecordingServer) -> set[str]:
    return {e["payload"]["key"] for e in server.accepted_events() if e["type"] == "metric"}


def _poisoned(events: list[dict[str, Any]] | None) -> int | None:
    """The tracker's answer to a batch it cannot take (what a 500 from a bug looks like to the client)."""
    if events and any(e.get("payload", {}).get("key") == "poison" for e in events):
        return 500
    return None


def test_a_poisoned_spool_file_never_blocks_and_is_quarantined_across_processes(server: RecordingServer,
                                                                               clean_env: Path) -> None:
    server.status_for = _poisoned
    spool = _spool(clean_env, server.url)
    assert spool.write(_body("poison"), 1)  # first in line, as in the issue
    for n in range(3):
        assert spool.write(_body(f"old{n}"), 1)
    processes = 0
    while spool.pending() or not spool.quarantined():
        processes += 1
        assert processes <= QUARANTINE_AFTER, [p.name for p in spool.pending()]
        client = Client(delivery_config(server.url, clean_env), backoff_base_s=0.01)
        for i in range(50):
            client.emit(make_event("metric", {"key": f"p{processes}-{i}", "value": i}))
        assert client.close(5)  # what a process does at exit
        # every live event of this process was delivered, whatever the poisoned file did
        assert {f"p{processes}-{i}" for i in range(50)} <= _keys(server)
        assert client.dropped == 0
    assert {"old0", "old1", "old2"} <= _keys(server)  # the files behind the poisoned one replayed
    (kept,) = spool.quarantined()
    assert kept.events == 1 and kept.reason["status"] == 500 and kept.reason["attempts"] == QUARANTINE_AFTER
    poison_posts = [r for r in server.requests if r["events"] and r["events"][0]["payload"].get("key") == "poison"]
    assert len(poison_posts) == QUARANTINE_AFTER  # bounded: counted across processes by the file's name
    assert spool.pending() == []


def test_a_tracker_failing_every_batch_is_down_not_poison(server: RecordingServer, clean_env: Path) -> None:
    server.status_for = lambda events: 503
    client = Client(delivery_config(server.url, clean_env, batch_size=10), backoff_base_s=0.01)
    for i in range(60):
        client.emit(make_event("metric", {"key": f"m{i}", "value": i}))
    assert client.flush(5)
    assert client.quarantined == 0 and client.dropped == 0
    assert client.spooled >= 60
    assert _spool(clean_env, server.url).quarantined() == []


def test_a_4xx_on_replay_is_quarantined_with_its_reason_and_the_cli_requeues_it(server: RecordingServer,
                                                                                clean_env: Path,
                                                                                child_env: dict) -> None:
    spool = _spool(clean_env, server.url)
    assert spool.write(_body("refused"), 1)
    server.status_for = lambda events: 422 if "refused" in {e["payload"].get("key") for e in events or ()} else None
    client = Client(delivery_config(server.url, clean_env), backoff_base_s=0.01)
    wait_for(lambda: client.quarantined == 1, deadline_s=10)
    assert spool.pending() == []
    assert len([r for r in server.requests if r["status"] == 422]) == 1  # tried once: a 4xx is never retried
    assert client.close(5)
    health = [e for e in server.accepted_events() if e["type"] == "agent_health"]
    assert health and health[-1]["payload"]["events_quarantined"] == 1  # the count reaches the tracker

    cli = [sys.executable, "-m", "runlink", "spool"]
    env = dict(child_env, RUNLINK_URL=server.url)
    listed = subprocess.run([*cli, "quarantine", "--json"], env=env, capture_output=True, text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    (item,) = json.loads(listed.stdout)
    assert item["status"] == 422 and item["events"] == 1 and item["tracker"] == server.url
    status = subprocess.run([*cli, "status", "--json"], env=env, capture_output=True, text=True, timeout=60)
    (row,) = json.loads(status.stdout)["trackers"]
    assert row["quarantined_batches"] == 1 and row["pending_batches"] == 0

    requeued = subprocess.run([*cli, "requeue"], env=env, capture_output=True, text=True, timeout=60)
    assert requeued.returncode == 0 and "requeued 1 batches" in requeued.stdout, requeued.stderr
    server.status_for = None  # the cause is fixed
    client = Client(delivery_config(server.url, clean_env), backoff_base_s=0.01)
    wait_for(lambda: "refused" in _keys(server), deadline_s=10)
    assert spool.pending() == [] and spool.quarantined() == []
    client.close(2)


def test_an_unreachable_tracker_gets_the_burst_spooled_at_once(clean_env: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    client = Client(delivery_config(url, clean_env, batch_size=100, queue_size=1000), backoff_base_s=0.01)
    for i in range(5000):  # five times the queue: only a sender that spools at once keeps up
        while not client.emit(make_event("metric", {"key": f"m{i}", "value": i})):
            raise AssertionError(f"dropped event {i}: the queue filled behind retries")
        if i % 500 == 499:
            wait_for(lambda: client.queue_size() < 500, deadline_s=10)
    assert client.flush(10)
    assert client.dropped == 0 and client.spooled >= 5000
    assert client.send_errors <= 5  # probes after backoff, not a retry loop per batch
    spool = _spool(clean_env, url)
    assert spool.pending_events() >= 5000
    for path in spool.pending():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


EXIT_ONLY = textwrap.dedent("""
    import runlink
    runlink.log_metric("late", 1)
""")


def test_a_short_process_after_the_outage_replays_the_spool_at_exit(clean_env: Path, child_env: dict) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    client = Client(delivery_config(url, clean_env, batch_size=50), backoff_base_s=0.01)
    for i in range(1000):
        client.emit(make_event("metric", {"key": f"m{i}", "value": i}))
    assert client.close(5)
    assert _spool(clean_env, url).pending_events() >= 1000
    server = RecordingServer(port)
    try:
        env = dict(child_env, RUNLINK_URL=url, RUNLINK_TOKEN="t", RUNLINK_FLUSH_TIMEOUT="10")
        done = subprocess.run([sys.executable, "-c", EXIT_ONLY], env=env, capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        # when the short process has exited, everything earlier processes spooled was delivered
        assert {f"m{i}" for i in range(1000)} | {"late"} <= _keys(server)
        assert _spool(clean_env, url).pending() == []
    finally:
        server.stop()


def test_batches_spooled_for_one_tracker_never_go_to_another(clean_env: Path) -> None:
    first, second = RecordingServer(), RecordingServer()
    try:
        for_first = _spool(clean_env, first.url)
        assert for_first.write(_body("for-first"), 1)
        client = Client(delivery_config(second.url, clean_env), backoff_base_s=0.01)
        client.emit(make_event("metric", {"key": "for-second", "value": 1}))
        assert client.close(5)
        assert _keys(second) == {"for-second"}
        assert len(for_first.pending()) == 1 and first.requests == []
        assert spool_key(first.url) != spool_key(second.url)
        assert spool_key("http://127.0.0.1:8686/") == spool_key("http://127.0.0.1:8686")
        assert spool_key("https://T.example.com") == spool_key("https://t.example.com:443")
    finally:
        first.stop()
        second.stop()


def test_spool_and_quarantine_files_are_private(clean_env: Path) -> None:
    spool = _spool(clean_env, "http://127.0.0.1:1")
    assert spool.write(b"x", 1)
    assert spool.quarantine_body(b"y", 1, {"status": 400, "message": "m"})
    (path,) = spool.pending()
    (kept,) = spool.quarantined()
    for file in (path, kept.path, kept.path.with_name(kept.path.name + ".reason.json")):
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600, file
    assert stat.S_IMODE(os.stat(spool.directory).st_mode) == 0o700
