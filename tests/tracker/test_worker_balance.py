"""Keep-alive connections follow the load across `runlink server --workers 2` (tracker/worker_balance.py): the
middleware's counting and its `Connection: close` on an overloaded worker, then a real two-worker tracker whose
busy connections all landed on one worker spreading them over both."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from pathlib import Path
from typing import Any

import pytest
import requests
from builders import stage

from runlink.tracker.worker_balance import MARGIN, Loads, RebalanceMiddleware
from support.tracker import start_tracker


def test_a_worker_is_overloaded_only_past_the_margin_over_the_least_loaded() -> None:
    assert Loads([MARGIN, 0], 0).overloaded()
    assert not Loads([MARGIN, 1], 0).overloaded()
    assert not Loads([0, 9], 0).overloaded()  # the other one is the busy one
    assert Loads([5, 3, 1], 0).overloaded()  # against the least loaded of the others
    assert not Loads([7], 0).overloaded()  # a single worker has nowhere to send anyone


def test_the_middleware_counts_requests_in_flight_and_closes_while_overloaded() -> None:
    counts = [0, 1]  # the other worker carries one request
    released = [asyncio.Event() for _ in range(3)]
    inside = asyncio.Event()

    async def app(scope: dict, receive: Any, send: Any) -> None:
        index = int(scope["path"].strip("/"))
        if counts[0] == len(released):
            inside.set()
        await released[index].wait()
        if index == 2:
            raise RuntimeError("the app failed")
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"ok"})

    middleware = RebalanceMiddleware(app, Loads(counts, 0))

    async def call(index: int) -> list[dict]:
        sent: list[dict] = []

        async def send(message: dict) -> None:
            sent.append(message)

        async def receive() -> dict:
            return {"type": "http.request", "body": b"", "more_body": False}

        await middleware({"type": "http", "path": f"/{index}"}, receive, send)
        return sent

    async def scenario() -> tuple[list[dict], list[dict], BaseException, list[int]]:
        tasks = [asyncio.create_task(call(index)) for index in range(3)]
        await asyncio.wait_for(inside.wait(), 10)
        in_flight = list(counts)
        released[0].set()  # 3 in flight here against 1 there: this one is handed back
        first = await tasks[0]
        released[1].set()  # 2 against 1 now: kept
        second = await tasks[1]
        released[2].set()
        failed = (await asyncio.gather(tasks[2], return_exceptions=True))[0]
        return first, second, failed, in_flight

    first, second, failed, in_flight = asyncio.run(scenario())
    assert in_flight == [3, 1]
    assert (b"connection", b"close") in first[0]["headers"]
    assert (b"content-type", b"text/plain") in first[0]["headers"]
    assert (b"connection", b"close") not in second[0]["headers"]
    assert isinstance(failed, RuntimeError)
    assert counts == [0, 1]  # every request counted out, the failed one too


def _worker(session: requests.Session, url: str) -> int:
    return session.get(url + "/healthz", timeout=30).json()["worker"]


@pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_busy_connections_that_all_landed_on_one_worker_spread_over_both(tmp_path: Path) -> None:
    tracker = start_tracker(tmp_path / "home", workers=2)
    try:
        # six keep-alive connections that the kernel placed on one worker (the first one's)
        kept: list[requests.Session] = []
        first = None
        for _ in range(200):
            session = requests.Session()
            worker = _worker(session, tracker.url)
            first = first or worker
            if worker == first and len(kept) < 6:
                kept.append(session)
            else:
                session.close()
            if len(kept) == 6:
                break
        assert len(kept) == 6, "the kernel never placed six connections on one worker"

        body = json.dumps({"events": [stage({"app_id": "app-balance"}, n) for n in range(300)]}).encode()
        headers = {**tracker.headers(), "Content-Type": "application/json"}
        moved = threading.Event()
        closes: list[int] = []

        def keep_busy(session: requests.Session) -> None:
            for _ in range(60):
                answer = session.post(tracker.url + "/api/v1/events", data=body, headers=headers, timeout=60)
                assert answer.status_code == 202, answer.text
                if answer.headers.get("connection") == "close":
                    closes.append(1)
                    if _worker(session, tracker.url) != first:  # the new connection went to the other worker
                        moved.set()
                if moved.is_set():
                    return

        with concurrent.futures.ThreadPoolExecutor(len(kept)) as pool:
            list(pool.map(keep_busy, kept))
        assert moved.is_set(), f"no connection left the busy worker ({len(closes)} handed back)"
    finally:
        for session in kept:
            session.close()
        tracker.stop()
