"""Reduced fault suite (CI, a few minutes): tracker SIGKILLed and restarted mid-run on SQLite and PostgreSQL; tracker
slow and answering 500s behind a real proxy; no disk space for the spool. Every scenario checks the client's own
accounting against the database: nothing acknowledged (sent or spooled) is lost, nothing is stored twice.

scripts/reliability.py runs the same scenarios bigger (RUNLINK_RELIABILITY_SCALE) and prints the figures."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from faults import (
    FaultyProxy,
    db_counts,
    killable_tracker,
    producer_result,
    record,
    start_producer,
    tracker_db_url,
    wait_counts,
)

from runlink.tracker.process import free_port
from support.postgres import drop_database

SCALE = float(os.environ.get("RUNLINK_RELIABILITY_SCALE", "1"))


def _figures(n: int, counters: dict[str, Any], counts: dict[str, int]) -> dict[str, Any]:
    acknowledged = n - counters["dropped"]  # delivered, or kept in the spool to replay
    return {"sent": n, "acknowledged": acknowledged, "dropped_by_client": counters["dropped"],
            "stored": counts["events"], "lost": acknowledged - counts["events"],
            "duplicated": (counts["events"] - counts["distinct"]) + (counts["metric_rows"] - counts["distinct"])
            + (counts["all_events"] - counts["all_distinct"]), "client": counters}


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_tracker_killed_and_restarted_mid_run(backend: str, tmp_path: Path) -> None:
    db_url = tracker_db_url(backend, tmp_path / "tracker")
    tracker = killable_tracker(tmp_path / "tracker", db_url)
    tracker.start()
    tag = f"kill{uuid.uuid4().hex[:8]}"
    n = int(3000 * SCALE)
    producer = start_producer(tracker.url, tracker.token, tmp_path / "client", tag, n, seconds=4.0 * SCALE,
                              flush_s=120)
    try:
        deadline = time.monotonic() + 60
        while db_counts(tracker.db_url, tag)["events"] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)  # polling interval; the condition is the first stored batch
        tracker.kill()  # SIGKILL mid-run: in-flight requests die, the client spools and retries
        killed_at = db_counts(tracker.db_url, tag)["events"]
        tracker.start()  # same port, same database
        counters = producer_result(producer)
        # What the producer still held in its spool when it exited (the restart can outlast a short process,
        # e.g. PostgreSQL migrations on a busy machine) is replayed by the next process on the same RUNLINK_HOME.
        replay = producer_result(start_producer(tracker.url, tracker.token, tmp_path / "client", tag + "r", 20,
                                                seconds=5.0, flush_s=60))
        counts = wait_counts(tracker.db_url, tag, n - counters["dropped"])
    finally:
        if producer.poll() is None:
            producer.kill()
        tracker.stop()
        if backend == "postgresql":
            drop_database(db_url)  # each CI run left this scratch database behind
    figures = {**_figures(n, counters, counts), "stored_when_killed": killed_at,
               "replayed_later": replay["replayed"]}
    record(f"kill_restart_{backend}", figures)
    assert 0 < killed_at < n, "the kill did not happen mid-run"
    assert counters["dropped"] == 0
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures


def test_tracker_slow_and_failing_job_stays_within_bounds(tmp_path: Path) -> None:
    """Seconds per request and 30% 500s: the producing process finishes within emit time + its flush bound;
    what it could not deliver is spooled and a later process replays it: nothing lost, nothing doubled."""
    tracker = killable_tracker(tmp_path / "tracker")
    tracker.start()
    proxy = FaultyProxy(tracker.port, delay_s=2.0, error_rate=0.3)
    tag = f"slow{uuid.uuid4().hex[:8]}"
    n = int(1000 * SCALE)
    flush_s = 5.0
    try:
        started = time.monotonic()
        counters = producer_result(start_producer(proxy.url, tracker.token, tmp_path / "client", tag, n,
                                                  seconds=1.0, flush_s=flush_s))
        wall = time.monotonic() - started
        # a later process on the same machine (same RUNLINK_HOME), tracker reachable at the same URL (the spool
        # is kept per tracker URL: the proxy stops failing): replays the spool
        proxy.delay_s, proxy.error_rate = 0.0, 0.0
        replay_tag = tag + "r"
        replay = producer_result(start_producer(proxy.url, tracker.token, tmp_path / "client", replay_tag, 20,
                                                seconds=5.0, flush_s=60))
        counts = wait_counts(tracker.db_url, tag, n - counters["dropped"])
    finally:
        proxy.close()
        tracker.stop()
    figures = {**_figures(n, counters, counts), "process_wall_s": round(wall, 2),
               "bound_s": round(counters["emit_s"] + flush_s + 10, 2), "proxy_requests": proxy.requests,
               "proxy_500s": proxy.errors, "replayed_later": replay["replayed"]}
    record("slow_and_500", figures)
    assert counters["total_s"] <= counters["emit_s"] + flush_s + 1.0, counters  # the flush bound holds
    assert wall <= figures["bound_s"], figures  # + interpreter start/exit
    assert proxy.errors > 0
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures


def test_no_disk_space_for_the_spool(tmp_path: Path) -> None:
    """Tracker down and a 64 KiB tmpfs for RUNLINK_HOME: the spool fills, the client counts drops, no crash."""
    home = tmp_path / "tiny"
    home.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(home)],
                             capture_output=True, text=True).returncode == 0
    if not mounted:  # not root: a file where the spool directory should be
        (home / "spool").write_text("not a directory")
    n = int(20000 * SCALE)
    try:
        down = f"http://127.0.0.1:{free_port()}"
        counters = producer_result(start_producer(down, "rl_x", home, "nodisk", n, seconds=0, flush_s=3.0))
    finally:
        if mounted:
            subprocess.run(["umount", str(home)], capture_output=True)
    record("no_disk_space", {"sent": n, "spooled": counters["spooled"], "dropped": counters["dropped"],
                             "mode": "tmpfs 64k" if mounted else "file in place of the spool dir",
                             "client": counters})
    assert counters["dropped"] > 0
    accounted = counters["spooled"] + counters["dropped"] + counters["sent"]
    assert n <= accounted <= n + 2, counters  # + the client's own agent_health report(s)
