"""The two spool scenarios of issue 15, shared by tests/reliability/test_poisoned_spool.py (small numbers, asserted)
and scripts/reliability_spool.py (the issue's numbers, printed). Real `runlink server`, real child processes that
use the SDK (`runlink.log_metric`) and exit normally, so the atexit flush is the real one.

- poisoned spool: one batch the tracker answers 500 to (a proxy in front of the real tracker fails it) is spooled
  by a first process; then N processes log M metrics each: every metric must be stored, the poisoned batch ends
  in the quarantine folder, the spool ends empty.
- down from the start: a process logs M metrics in S seconds while nothing listens on the tracker's port (all
  must be spooled, none dropped); the tracker starts; a short process logs one metric and exits: when it has
  exited, all M must be stored (its exit flush replayed the spool)."""

from __future__ import annotations

import gzip
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from faults import ROOT, FaultyProxy, killable_tracker

from runlink.spool import Spool, spool_key
from runlink.tracker.process import free_port

LOGGER = r'''
import atexit, json, sys, time
def _report():
    from runlink import delivery
    client = delivery._client
    print("COUNTERS=" + json.dumps(client.counters() if hasattr(client, "counters") else {}), flush=True)
atexit.register(_report)  # registered before runlink's exit flush, so it runs after it (atexit is LIFO)
import runlink
prefix, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
started = time.monotonic()
for i in range(n):
    runlink.log_metric(f"{prefix}{i}", i)
    if seconds and i % 100 == 99:  # pacing: n metrics spread over `seconds`
        time.sleep(max(0.0, started + seconds * (i + 1) / n - time.monotonic()))
print("EMIT_S=%.3f" % (time.monotonic() - started), flush=True)
'''

POISON_KEY = "poison0"


def _is_poisoned(body: bytes) -> bool:
    try:
        return f'"key":"{POISON_KEY}"'.encode() in gzip.decompress(body)
    except OSError:
        return False


def run_logger(env: dict[str, str], prefix: str, n: int, seconds: float = 0.0,
               timeout: float = 300) -> dict[str, Any]:
    """One child process logging `n` metrics; its counters after the exit flush, and its wall time."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", LOGGER, prefix, str(n), str(seconds)], env=env,
                          capture_output=True, text=True, timeout=timeout)
    wall = time.monotonic() - started
    if done.returncode != 0 or "Traceback" in done.stderr:
        raise AssertionError(f"logger failed rc={done.returncode}\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    counters = next(json.loads(line[9:]) for line in done.stdout.splitlines() if line.startswith("COUNTERS="))
    emit = next(float(line[7:]) for line in done.stdout.splitlines() if line.startswith("EMIT_S="))
    return {**counters, "wall_s": round(wall, 2), "emit_s": emit}


def stored_metrics(db_url: str, prefix: str) -> int:
    from sqlalchemy import create_engine, text

    from runlink.tracker.settings import normalize_db_url

    engine = create_engine(normalize_db_url(db_url))
    try:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT COUNT(*) FROM metrics WHERE key LIKE :p"),
                                    {"p": prefix + "%"}).scalar() or 0)
    finally:
        engine.dispose()


def _env(url: str, token: str, home: Path, dag_id: str, flush_timeout: float) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT / "python"), "RUNLINK_URL": url, "RUNLINK_TOKEN": token,
            "RUNLINK_HOME": str(home), "RUNLINK_FLUSH_TIMEOUT": str(flush_timeout), "AIRFLOW_CTX_DAG_ID": dag_id,
            "AIRFLOW_CTX_EXECUTION_DATE": "2026-11-22T10:00:00+00:00", "AIRFLOW_CTX_TASK_ID": "t",
            "AIRFLOW_CTX_TRY_NUMBER": "1"}


def poisoned_spool(work: Path, processes: int = 3, metrics: int = 1000, flush_timeout: float = 5.0) -> dict[str, Any]:
    tracker = killable_tracker(work / "tracker")
    tracker.start()
    proxy = FaultyProxy(tracker.port, 0.0, 0.0, fails=_is_poisoned)
    try:
        home = work / "agent"
        env = _env(proxy.url, tracker.token, home, "poisoned_spool", flush_timeout)
        first = run_logger(env, "poison", 1)  # the tracker answers 500 to this batch, whatever happens
        spool = Spool(home / "spool" / spool_key(proxy.url), 10**9)
        spooled_poison = [p.name for p in spool.pending()]
        runs = []
        for k in range(processes):
            counters = run_logger(env, f"p{k}-", metrics)
            runs.append({"delivered": stored_metrics(tracker.db_url, f"p{k}-"), "wall_s": counters["wall_s"],
                         "dropped": counters.get("dropped"), "quarantined": counters.get("quarantined")})
        quarantined = spool.quarantined()
        return {
            "poison_process": {"spooled": first.get("spooled"), "files": spooled_poison},
            "processes": runs,
            "delivered": sum(r["delivered"] for r in runs),
            "expected": processes * metrics,
            "poison_500s": proxy.poisoned,
            "quarantined": [{"file": q.path.name, "events": q.events, "status": q.reason.get("status"),
                             "attempts": q.reason.get("attempts")} for q in quarantined],
            "poison_stored": stored_metrics(tracker.db_url, POISON_KEY),
            "pending_files_left": len(spool.pending()),
        }
    finally:
        proxy.close()
        tracker.stop()


def down_from_start(work: Path, metrics: int = 20000, seconds: float = 2.0,
                    flush_timeout: float = 5.0) -> dict[str, Any]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    token = "rl_" + secrets.token_urlsafe(24)
    tracker_home = work / "tracker"
    tracker_home.mkdir(parents=True, exist_ok=True)
    (tracker_home / "token").write_text(token)  # the tracker adopts it at its first start
    home = work / "agent"
    env = _env(url, token, home, "down_from_start", flush_timeout)
    down = run_logger(env, "down-", metrics, seconds)
    spool = Spool(home / "spool" / spool_key(url), 10**9)
    spooled_events = spool.pending_events()
    tracker = killable_tracker(tracker_home, port=port)
    tracker.start()
    try:
        after = run_logger(env, "after-", 1)
        delivered_at_exit = stored_metrics(tracker.db_url, "down-")  # read right after the short process exited
        return {
            "metrics": metrics, "seconds": seconds, "emit_s": down["emit_s"],
            "down_process": {k: down.get(k) for k in ("spooled", "dropped", "send_errors", "wall_s")},
            "spooled_events_on_disk": spooled_events,
            "short_process": {k: after.get(k) for k in ("replayed", "sent", "dropped", "wall_s")},
            "delivered_after_short_process": delivered_at_exit,
            "pending_files_left": len(spool.pending()),
            "flush_timeout_s": flush_timeout,
        }
    finally:
        tracker.stop()
