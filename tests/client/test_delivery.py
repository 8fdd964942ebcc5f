"""The delivery client against real local servers: batching, retries, rejects, spool, replay, bounds, fork."""

from __future__ import annotations

import gzip
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from delivery_config import delivery_config
from servers import HangingServer, RecordingServer

from runlink import delivery, sdk
from runlink.delivery import Client, NoopClient
from runlink.protocol import make_event
from runlink.spool import Spool, spool_key
from runlink.tracker.process import free_port
from support.waiting import wait_for


def _spool_dir(home: Path, url: str) -> Path:
    """The spool folder of one tracker URL (batches for one tracker never go to another)."""
    return home / "spool" / spool_key(url)


def _metric(i: int) -> dict:
    return make_event("metric", {"key": f"m{i}", "value": i}, context={"dag_id": "d", "task_id": "t"})


def test_events_arrive_in_batches_bounded_by_count(server: RecordingServer, clean_env: Path) -> None:
    client = Client(delivery_config(server.url, clean_env, batch_size=10))
    for i in range(35):
        assert client.emit(_metric(i))
    assert client.flush(5)
    keys = [e["payload"]["key"] for e in server.accepted_events() if e["type"] == "metric"]
    assert sorted(keys) == sorted(f"m{i}" for i in range(35))
    assert all(len(r["events"]) <= 10 for r in server.requests)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer tok-SECRET-123"
    assert client.counters()["sent"] >= 35 and client.counters()["dropped"] == 0


def test_batches_are_bounded_by_bytes(server: RecordingServer, clean_env: Path) -> None:
    client = Client(delivery_config(server.url, clean_env, batch_size=1000, batch_bytes=4096))
    for i in range(40):
        client.emit(make_event("log", {"text": "x" * 500, "seq": i}))
    assert client.flush(5)
    logs = [e for e in server.accepted_events() if e["type"] == "log"]
    assert sorted(e["payload"]["seq"] for e in logs) == list(range(40))
    assert len(server.requests) >= 5
    assert all(r["body_bytes"] <= 4096 for r in server.requests)


def test_time_bound_sends_a_lone_event_without_flush(server: RecordingServer, clean_env: Path) -> None:
    client = Client(delivery_config(server.url, clean_env, batch_interval_s=0.1))
    client.emit(_metric(1))
    wait_for(lambda: server.accepted_events(), deadline_s=5)


def test_sdk_events_are_completed_and_validated_off_thread(server: RecordingServer, clean_env: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CTX_DAG_ID", "dag_a")
    monkeypatch.setenv("AIRFLOW_CTX_TASK_ID", "task_a")
    client = Client(delivery_config(server.url, clean_env))
    delivery.set_client(client)
    sdk.log_metric("rows", 42)
    sdk.log_metrics({"nan": float("nan"), "flag": True, "name": "abc"})
    assert client.flush(5)
    metrics = {e["payload"]["key"]: e for e in server.accepted_events() if e["type"] == "metric"}
    assert metrics["rows"]["payload"]["value"] == 42
    assert metrics["nan"]["payload"]["value"] == "NaN"
    assert metrics["rows"]["context"] == {"dag_id": "dag_a", "task_id": "task_a"}
    assert metrics["rows"]["source"]["agent"] == "python" and metrics["rows"]["source"]["pid"] == os.getpid()
    assert metrics["rows"]["time"].endswith("Z") and len({e["id"] for e in metrics.values()}) == 4


def test_invalid_event_is_dropped_counted_and_logged_once(server: RecordingServer, clean_env: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    client = Client(delivery_config(server.url, clean_env))
    bad = make_event("metric", {"key": "k", "value": 1, "unexpected": True})
    with caplog.at_level(logging.WARNING, logger="runlink"):
        client.emit(bad)
        client.emit(dict(bad, type="no.such.type"))
        client.emit(_metric(1))
        assert client.flush(5)
    sent = server.accepted_events()
    assert [e["payload"]["key"] for e in sent if e["type"] == "metric"] == ["m1"]
    assert client.invalid == 2 and client.dropped == 2
    assert sum("invalid event" in r.getMessage() for r in caplog.records) == 1


def test_5xx_and_429_are_retried_with_backoff(server: RecordingServer, clean_env: Path) -> None:
    server.statuses.extend([503, 429, 500])
    client = Client(delivery_config(server.url, clean_env), backoff_base_s=0.01)
    client.emit(_metric(1))
    wait_for(lambda: client.sent == 1, deadline_s=10)  # the client saw the 202 (not only the server sent it)
    assert [r["status"] for r in server.requests] == [503, 429, 500, 202]
    assert client.send_errors == 3 and client.sent == 1 and client.spooled == 0


def test_4xx_is_not_retried_and_is_logged_without_the_token(server: RecordingServer, clean_env: Path,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    server.statuses.extend([401])
    client = Client(delivery_config(server.url, clean_env), backoff_base_s=0.01)
    with caplog.at_level(logging.DEBUG):
        client.emit(_metric(1))
        wait_for(lambda: client.quarantined == 1, deadline_s=10)
        assert client.flush(5)
    with_metric = [r for r in server.requests if any(e["type"] == "metric" for e in r["events"])]
    assert [r["status"] for r in with_metric] == [401]  # tried once, never again
    assert client.send_errors == 1 and client.spooled == 0 and client.dropped == 0
    # kept, not lost: in the quarantine folder with the reason (a fixed token can requeue it)
    (kept,) = client._spool.quarantined()
    assert kept.events == 1 and kept.reason["status"] == 401
    assert "tok-SECRET-123" not in kept.path.with_name(kept.path.name + ".reason.json").read_text()
    assert "HTTP 401" in caplog.text and "RUNLINK_TOKEN" in caplog.text
    assert "tok-SECRET-123" not in caplog.text
    assert "tok-SECRET-123" not in repr(client) and "tok-SECRET-123" not in repr(client.config)


def test_full_queue_drops_and_counts_and_never_blocks(hanging: HangingServer, clean_env: Path) -> None:
    # The sender is stuck on a tracker that never answers, so nothing leaves the queue.
    client = Client(delivery_config(hanging.url, clean_env, queue_size=100, batch_size=10, request_timeout_s=30))
    assert client.emit(_metric(0))
    wait_for(lambda: hanging.connections, deadline_s=10)  # the sender is now blocked in its POST
    accepted, costs = 0, []
    events = [_metric(i) for i in range(1, 5001)]
    for event in events:
        start = time.perf_counter()
        accepted += client.emit(event)
        costs.append(time.perf_counter() - start)
    assert accepted <= 100
    assert client.dropped == 5000 - accepted
    # blocking would mean waiting for the 30 s request; scheduler noise on a busy 2-core box is milliseconds
    costs.sort()
    assert sum(costs) < 1.0 and costs[len(costs) // 2] < 50e-6, (sum(costs), costs[len(costs) // 2], costs[-1])
    start = time.monotonic()
    assert client.flush(1.0) is False  # the tracker hangs: the flush gives up at its bound
    assert time.monotonic() - start < 2.0
    assert client.spooled >= accepted  # what was queued went to disk


def test_flush_is_bounded_against_a_hanging_tracker(hanging: HangingServer, clean_env: Path) -> None:
    client = Client(delivery_config(hanging.url, clean_env, request_timeout_s=60, batch_size=10))
    for i in range(10):
        client.emit(_metric(i))
    wait_for(lambda: hanging.connections, deadline_s=10)  # the sender is inside a 60 s request already
    for i in range(10, 100):
        client.emit(_metric(i))
    start = time.monotonic()
    assert client.flush(1.5) is False
    elapsed = time.monotonic() - start
    assert 1.4 < elapsed < 2.5, elapsed
    # the in-flight batch and the queue were spooled by the flush itself
    assert Spool(_spool_dir(clean_env, hanging.url), 10**9).pending_events() >= 100


def test_tracker_down_spools_then_the_same_client_replays_when_it_is_back(clean_env: Path) -> None:
    port = free_port()
    client = Client(delivery_config(f"http://127.0.0.1:{port}", clean_env), backoff_base_s=0.01, backoff_max_s=0.2)
    for i in range(50):
        client.emit(_metric(i))
    assert client.flush(5)  # spooled: the flush returns as soon as everything is on disk
    assert client.spooled >= 50 and client.sent == 0
    server = RecordingServer(port)
    try:
        wait_for(lambda: {f"m{i}" for i in range(50)} <= {e["payload"].get("key") for e in
                                                             server.accepted_events()}, deadline_s=15)
        wait_for(lambda: os.listdir(_spool_dir(clean_env, server.url)) == [], deadline_s=5)
        assert client.replayed >= 50
    finally:
        server.stop()


def test_a_flush_that_runs_out_while_the_sender_makes_a_batch_spools_it(server: RecordingServer,
                                                                        clean_env: Path) -> None:
    """When flush() returns, what was emitted before is sent or on disk: also the events the sender had taken off
    the queue and was making a batch of (a task process ends with os._exit right after its flush)."""
    client = Client(delivery_config(server.url, clean_env))
    client.emit(_metric(0))
    assert client.flush(5)  # the sender runs
    making = threading.Event()
    make = client._build_batches

    def slow_make(items):  # noqa: ANN001, ANN202 - the sender's batch making, held up while the flush runs out
        items = list(items)
        if any(isinstance(i, dict) and i.get("type") == "metric" for i in items):
            making.set()
            time.sleep(0.5)
        return make(items)

    client._build_batches = slow_make
    client.emit(_metric(1))
    assert making.wait(5)  # metric 1 is in the sender's hands
    client._build_batches = make
    assert not client.flush(0.05)
    sent = {e["payload"].get("key") for e in server.accepted_events()}
    on_disk = Spool(_spool_dir(clean_env, server.url), 10**9).pending_events()
    assert "m1" in sent or on_disk >= 1, (sent, on_disk, client.counters())
    wait_for(lambda: "m1" in {e["payload"].get("key") for e in server.accepted_events()}, "m1 replayed",
             deadline_s=30)


def test_a_running_client_replays_a_batch_whose_claimer_died(server: RecordingServer, clean_env: Path) -> None:
    """A task process can end (os._exit) while its sender replays the batch its own timed-out flush spooled: the
    file stays claimed by a dead pid. A long-lived process (the scheduler's client) gives it back and sends it."""
    client = Client(delivery_config(server.url, clean_env), spool_check_interval_s=0.2)
    client.emit(_metric(0))
    assert client.flush(5)  # the sender runs: its start-up release of orphans is behind it
    spool = Spool(_spool_dir(clean_env, server.url), 10**9)
    assert spool.write(gzip.compress(json.dumps({"events": [_metric(1)]}).encode()), events=1)
    (spooled,) = spool.pending()
    dead_pid = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                                  text=True).stdout)
    os.rename(spooled, spooled.with_name(f"{spooled.name}.claimed-{dead_pid}"))
    wait_for(lambda: "m1" in {e["payload"].get("key") for e in server.accepted_events()}, "the orphaned batch",
             deadline_s=10)
    wait_for(lambda: os.listdir(spool.directory) == [], "an empty spool", deadline_s=5)
    assert client.replayed == 1


CHILD_DOWN = textwrap.dedent("""
    import runlink
    for i in range(200):
        runlink.log_metric(f"m{i}", i)
""")


def test_a_later_process_replays_the_spool_of_an_earlier_one(child_env: dict, clean_env: Path) -> None:
    port = free_port()
    env = dict(child_env, RUNLINK_URL=f"http://127.0.0.1:{port}", RUNLINK_TOKEN="t", AIRFLOW_CTX_DAG_ID="d")
    done = subprocess.run([sys.executable, "-c", CHILD_DOWN], env=env, timeout=60, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    spool = Spool(_spool_dir(clean_env, f"http://127.0.0.1:{port}"), 10**9)
    assert spool.pending_events() >= 200  # the metrics (and the agent_health report) are on disk
    server = RecordingServer(port)
    try:
        client = Client(delivery_config(server.url, clean_env))
        wait_for(lambda: os.listdir(spool.directory) == [], deadline_s=15)  # claimed files gone too
        keys = {e["payload"].get("key") for e in server.accepted_events() if e["type"] == "metric"}
        assert keys == {f"m{i}" for i in range(200)}
        health = [e for e in server.accepted_events() if e["type"] == "agent_health"]
        assert health and health[-1]["payload"]["events_spooled"] >= 200
        assert client.replayed >= 200
    finally:
        server.stop()


def test_agent_health_reports_counters_at_flush(server: RecordingServer, clean_env: Path) -> None:
    client = Client(delivery_config(server.url, clean_env, queue_size=5))
    for i in range(8):
        client.emit(_metric(i))
    assert client.flush(5)
    health = [e for e in server.accepted_events() if e["type"] == "agent_health"]
    assert len(health) == 1
    assert health[0]["payload"]["events_dropped"] == 3 and health[0]["payload"]["reason"] == "flush"
    assert client.flush(5)  # nothing new happened: no second report
    assert len([e for e in server.accepted_events() if e["type"] == "agent_health"]) == 1


def test_tracking_off_gives_a_noop_client(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBND__TRACKING", "false")
    before = {t.ident for t in threading.enumerate()}
    client = delivery.get_client()
    assert isinstance(client, NoopClient) and delivery.get_client() is client
    sdk.log_metric("k", 1)  # no error, and no sender thread was started
    assert not [t for t in threading.enumerate() if t.ident not in before and t.name == "runlink-sender"]


def test_bad_configuration_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLINK_TRACKING", "maybe")
    assert isinstance(delivery.get_client(), NoopClient)
    sdk.log_metric("k", 1)


def test_get_client_is_a_process_singleton(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> None:
    monkeypatch.setenv("RUNLINK_URL", server.url)
    first = delivery.get_client()
    assert isinstance(first, Client) and delivery.get_client() is first


def test_forked_child_gets_a_fresh_client(monkeypatch: pytest.MonkeyPatch, server: RecordingServer) -> None:
    monkeypatch.setenv("RUNLINK_URL", server.url)
    monkeypatch.setenv("RUNLINK_TOKEN", "t")
    parent = delivery.get_client()
    sdk.log_metric("parent", 1)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report, flush, tell the parent, leave without running pytest's teardown
        code = 1
        try:
            child = delivery.get_client()
            fresh = child is not parent and child.pid == os.getpid() and child._thread.is_alive()
            sdk.log_metric("child", 2)
            code = 0 if fresh and child.flush(5) else 3
        finally:
            os.write(write_end, str(code).encode())
            os._exit(code)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    assert os.read(read_end, 10) == b"0" and os.waitstatus_to_exitcode(status) == 0
    assert parent.flush(5)
    events = [e for e in server.accepted_events() if e["type"] == "metric"]
    by_key = {e["payload"]["key"]: e for e in events}
    assert set(by_key) == {"parent", "child"}  # the child did not re-send the parent's queued event
    assert by_key["child"]["source"]["pid"] == pid and by_key["parent"]["source"]["pid"] == os.getpid()


def _mp_child(n: int) -> None:
    sdk.log_metric("from_mp_child", n)  # the child leaves through os._exit: no atexit, a finalizer flushes


def test_multiprocessing_child_flushes_on_its_way_out(monkeypatch: pytest.MonkeyPatch,
                                                      server: RecordingServer) -> None:
    import multiprocessing

    monkeypatch.setenv("RUNLINK_URL", server.url)
    monkeypatch.setenv("RUNLINK_TOKEN", "t")
    ctx = multiprocessing.get_context("fork")
    proc = ctx.Process(target=_mp_child, args=(7,))
    proc.start()
    proc.join(60)
    assert proc.exitcode == 0
    metrics = [e for e in server.accepted_events() if e["type"] == "metric"]
    assert [(m["payload"]["key"], m["payload"]["value"]) for m in metrics] == [("from_mp_child", 7)]
    assert metrics[0]["source"]["pid"] == proc.pid


def test_spool_bound_counts_drops_when_the_tracker_is_down(clean_env: Path) -> None:
    client = Client(delivery_config(f"http://127.0.0.1:{free_port()}", clean_env, batch_size=50, spool_max_bytes=3000))
    for i in range(1000):
        client.emit(make_event("log", {"text": os.urandom(100).hex(), "seq": i}))
    assert client.flush(10)
    counters = client.counters()
    assert counters["spooled"] > 0 and counters["dropped"] > 0
    # every event is accounted for: the 1000 logs and the agent_health report the flush added
    assert counters["spooled"] + counters["dropped"] == 1000 + 1
    assert client._spool.directory.parent == clean_env / "spool"
    assert Spool(client._spool.directory, 10**9).size_bytes() <= 3000


def test_unwritable_spool_counts_drops_and_never_raises(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "spool").write_text("a file where the spool folder should be")
    client = Client(delivery_config(f"http://127.0.0.1:{free_port()}", clean_env))
    for i in range(20):
        client.emit(_metric(i))
    assert client.flush(10)
    assert client.spooled == 0 and client.dropped >= 20


def test_a_fork_during_the_senders_imports_leaves_the_child_able_to_import(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_env: Path) -> None:
    """The sender thread imports its transport's modules. A fork from another thread in the middle of that import
    used to give a child in which the module's import lock is held by a thread that does not exist there: its own
    import of the module then waited forever (LocalExecutor workers forked from the Airflow scheduler hung so)."""
    import builtins

    (tmp_path / "runlink_slow_transport.py").write_text(
        "import builtins\nbuiltins._runlink_importing.set()\nbuiltins._runlink_release.wait(30)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importing, release = threading.Event(), threading.Event()
    monkeypatch.setattr(builtins, "_runlink_importing", importing, raising=False)
    monkeypatch.setattr(builtins, "_runlink_release", release, raising=False)

    class SlowImportTransport:
        def __init__(self, *_args: object) -> None:
            import runlink_slow_transport  # noqa: F401 - held mid-import while the main thread forks

        def send(self, *_args: object) -> None:
            raise ConnectionError("not used")

    monkeypatch.setattr(delivery, "HttpTransport", SlowImportTransport)
    client = Client(delivery_config(f"http://127.0.0.1:{free_port()}", clean_env))
    assert importing.wait(10)  # the sender thread is inside the import
    threading.Timer(0.5, release.set).start()  # the import ends a little later
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            import runlink_slow_transport  # noqa: F401 - with the module lock inherited as held: forever
            code = 0
        finally:
            os._exit(code)
    statuses: list[int] = []

    def exited() -> bool:
        reaped, status = os.waitpid(pid, os.WNOHANG)
        if reaped:
            statuses.append(os.waitstatus_to_exitcode(status))
        return bool(reaped)

    try:
        wait_for(exited, "the forked child to import and exit", 20)
    finally:
        if not statuses:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        client.close(1)
    assert statuses == [0]
