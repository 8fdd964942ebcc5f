"""`runlink server --workers 2`: one SO_REUSEPORT socket per worker process, so connections (and the work of
parsing batches) spread over the workers whatever their timing; a taken port is refused; SIGTERM stops all."""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests
from builders import full_run

from support.tracker import ROOT, Tracker, start_tracker

pytestmark = pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


def _children(pid: int) -> set[int]:
    out: set[int] = set()
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as handle:
            out.update(int(p) for p in handle.read().split())
    return out


def test_connections_spread_over_workers_and_sigterm_stops_them(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path / "home", workers=2)
    try:
        children = _children(tracker.process.pid)  # the workers (and multiprocessing's resource tracker)

        def worker_of_new_connection(_: int) -> int:
            with requests.Session() as session:  # a new connection, so a new source port to hash
                return session.get(tracker.url + "/healthz", timeout=30).json()["worker"]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            workers = set(pool.map(worker_of_new_connection, range(64)))
        assert len(workers) == 2 and workers <= children, (workers, children)  # all 64 on one: chance 2**-63

        # concurrent batches through both workers: every event stored once, one tree per DAG
        dags = [f"workers_{n}" for n in range(8)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda dag: tracker.post_events(full_run(dag)), dags))
        assert all(a.status_code == 202 for a in answers), [a.text for a in answers]
        for dag in dags:
            page = tracker.get_json("/api/v1/dag-runs", dag_id=dag)
            assert len(page["items"]) == 1, page

        # a second tracker on the same port is refused instead of silently sharing its connections
        second = subprocess.run(Tracker(tmp_path / "other", port=tracker.port, workers=2).command(),
                                capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                                env={**os.environ, "PYTHONPATH": str(ROOT / "python")})
        assert second.returncode != 0 and "already in use" in second.stderr + second.stdout
    finally:
        tracker.process.send_signal(signal.SIGTERM)
        tracker.process.wait(timeout=60)
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") and _state(pid) != "Z" for pid in workers):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)  # polling interval for the condition above


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
