"""Tokens hashed at rest and never logged; secrets masked in what is stored and shown; per-token rate limits (429 +
Retry-After) and request size caps — all against real trackers (SQLite and PostgreSQL where it matters)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from runlink.tracker.security import TokenBuckets


def _db_text(tracker: Any) -> str:
    """Everything the database holds, as text (the SQLite file's bytes; every text column on PostgreSQL)."""
    if tracker.backend == "sqlite":
        from pathlib import Path

        path = Path(tracker.db_url[len("sqlite:///"):])
        text = path.read_bytes().decode("latin-1")
        wal = path.with_name(path.name + "-wal")
        return text + (wal.read_bytes().decode("latin-1") if wal.exists() else "")
    import psycopg

    url = tracker.db_url.replace("postgresql+psycopg://", "postgresql://")
    chunks = []
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")]
        for table in tables:
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                chunks.append(repr(row))
    return "\n".join(chunks)


def test_tokens_hashed_at_rest_and_never_logged(tracker: Any, unique: str) -> None:
    ingest = tracker.make_token("ingest")
    read = tracker.make_token("read")
    # use them, fail with them, and log into the UI with one
    assert tracker.post_events([{"v": 1, "id": f"tok-{unique}", "type": "metric", "time": "2026-01-01T00:00:00Z",
                                 "source": {"agent": "python"}, "context": {"dag_id": f"tok_{unique}"},
                                 "payload": {"key": "k", "value": 1}}], token=ingest).status_code == 202
    assert tracker.get("/api/v1/dag-runs", token=ingest).status_code == 403
    assert tracker.get("/api/v1/dag-runs", token=read + "x").status_code == 401
    stored = _db_text(tracker)
    log = tracker.log()
    for token in (tracker.token, ingest, read):
        assert token not in stored, "a token is stored in clear"
        assert token not in log, "a token is in the server log"
        assert token[3:] not in stored and token[3:] not in log
    import hashlib

    assert hashlib.sha256(ingest.encode()).hexdigest() in stored  # what is stored is the hash


def test_secrets_masked_in_what_is_stored_and_shown(tracker: Any, unique: str) -> None:
    dag_id = f"mask_{unique}"
    ctx = {"dag_id": dag_id, "dag_run_id": "r1", "task_id": "t", "try_number": "1"}
    secret_values = ["hunter2-" + unique, "s3cr3t-" + unique, "rl_" + "A" * 30 + unique, "pw-" + unique]
    events = [
        {"v": 1, "id": f"m1-{unique}", "type": "task_attempt.start", "time": "2026-01-01T00:00:00Z",
         "source": {"agent": "airflow"}, "context": ctx,
         "payload": {"state": "running", "params": {
             "password": secret_values[0], "conn_uri": f"postgresql://u:{secret_values[3]}@db/x",
             "bash_command": f"spark-submit --conf spark.runlink.token={secret_values[2]} job.py",
             "env": {"AWS_SECRET_ACCESS_KEY": secret_values[1], "HOME": "/root"}}}},
        {"v": 1, "id": f"m2-{unique}", "type": "spark_app.start", "time": "2026-01-01T00:00:01Z",
         "source": {"agent": "jvm"}, "context": ctx, "spark": {"app_id": f"app-{unique}"},
         "payload": {"name": "a", "conf": {"spark.runlink.token": secret_values[2],
                                           "spark.executorEnv.DB_PASSWORD": secret_values[0],
                                           "spark.master": "local[1]"}}},
        {"v": 1, "id": f"m3-{unique}", "type": "task_attempt.end", "time": "2026-01-01T00:00:02Z",
         "source": {"agent": "airflow"}, "context": ctx,
         "payload": {"state": "failed", "error": {"type": "ValueError",
                                                  "message": f"login failed password={secret_values[0]}"}}},
    ]
    assert tracker.post_events(events).status_code == 202
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)
    shown = json.dumps(tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}"))
    shown += json.dumps(tracker.get_json(f"/api/v1/views/dag-runs/{page['items'][0]['id']}"))
    stored = _db_text(tracker)
    for value in secret_values:
        assert value not in shown, f"{value} shown by the API"
        assert value not in stored, f"{value} stored"
    assert "/root" in shown and "local[1]" in shown  # what is not a secret stays


def test_rate_limit_per_token_answers_429_with_retry_after(tracker_factory: Any) -> None:
    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "2", "--rate-burst", "5"])
    read = tracker.make_token("read")  # one admin request spent
    statuses = [tracker.get("/api/v1/dag-runs", token=read).status_code for _ in range(12)]
    assert statuses[:5] == [200] * 5 and 429 in statuses, statuses
    limited = tracker.get("/api/v1/dag-runs", token=read)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= 2
    # another token has its own bucket; /healthz is never limited
    assert tracker.get("/api/v1/dag-runs").status_code == 200
    assert all(requests.get(tracker.url + "/healthz", timeout=10).status_code == 200 for _ in range(10))
    # the bucket refills: after Retry-After the same token is served again
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if tracker.get("/api/v1/dag-runs", token=read).status_code == 200:
            break
        time.sleep(0.2)  # polling interval; the condition is the tracker answering 200
    else:
        pytest.fail("the token's bucket never refilled")


def test_python_client_rides_through_429(tracker_factory: Any, tmp_path: Any) -> None:
    """The client retries 429: with a tight limit every event still arrives, none dropped."""
    from runlink.config import Config
    from runlink.delivery import Client

    tracker = tracker_factory(backend="sqlite", extra_args=["--rate-limit", "3", "--rate-burst", "2"])
    config = Config(url=tracker.url, token=tracker.make_token("ingest"), home=tmp_path, batch_size=10,
                    batch_interval_s=0.01, max_retries=20)
    client = Client(config)
    from runlink.protocol.events import make_event

    for i in range(100):
        client.emit(make_event("metric", {"key": "k", "value": i}, context={"dag_id": f"rl_{tmp_path.name}"}))
    client.flush(60)
    stored = 0
    deadline = time.monotonic() + 120  # what the client spooled while limited is replayed once it is served
    while time.monotonic() < deadline and stored < 100:
        time.sleep(1.0)  # polling interval (the admin token is rate limited too); the condition is what is stored
        page = tracker.get("/api/v1/dag-runs", dag_id=f"rl_{tmp_path.name}")
        if page.status_code != 200 or not page.json()["items"]:
            continue
        tree = tracker.get(f"/api/v1/dag-runs/{page.json()['items'][0]['id']}")
        if tree.status_code == 200:
            data = tree.json()
            stored = len(data["metrics"]) + sum(len(a["metrics"]) for a in data["task_attempts"])
    counters = client.counters()
    client.close(5)
    assert counters["dropped"] == 0, counters
    assert stored == 100, counters


def test_request_size_caps(tracker: Any) -> None:
    big = b'{"scope": "read", "name": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    response = requests.post(tracker.url + "/api/v1/tokens", data=big, timeout=60,
                             headers={**tracker.headers(), "Content-Type": "application/json"})
    assert response.status_code == 413

    def chunks():  # no Content-Length: the cap is counted on the stream
        for _ in range(40):
            yield b"x" * 65536

    response = requests.post(tracker.url + "/api/v1/alert-rules", data=chunks(), timeout=60,
                             headers={**tracker.headers(), "Content-Type": "application/json"})
    assert response.status_code == 413


def test_token_buckets_unit() -> None:
    buckets = TokenBuckets(rate=1.0, burst=2)
    assert buckets.take("a", now=0.0) == 0.0 and buckets.take("a", now=0.0) == 0.0
    assert buckets.take("a", now=0.0) == pytest.approx(1.0)
    assert buckets.take("b", now=0.0) == 0.0
    assert buckets.take("a", now=1.5) == 0.0
