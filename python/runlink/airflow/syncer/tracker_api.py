"""The tracker as the syncer sees it: a synchronous event sink over the one API client (`runlink.api_client`).

Why synchronous and not the process-wide asynchronous `Client`: a syncer is not a user task, it can wait; and it
may advance the watermark only after the tracker acknowledged every event of the cycle. The asynchronous client
drops events when its queue is full (right for tasks, wrong here). Batches are bounded (count and bytes), so a
backfill of any size holds at most one batch in memory.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from typing import Any

from runlink.api_client import TrackerClient, TrackerError

__all__ = ["EventSink", "SinkCounters", "TrackerClient", "TrackerError"]


@dataclass
class SinkCounters:
    batches: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0


class EventSink:
    """Collects events into bounded batches and POSTs each one synchronously (gzip), counting what the tracker
    accepted as new and what it already had."""

    def __init__(self, api: TrackerClient, max_events: int = 500, max_bytes: int = 4 * 1024 * 1024) -> None:
        self.api = api
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._parts: list[bytes] = []
        self._size = 0
        self.counters = SinkCounters()

    def add(self, event: dict[str, Any]) -> None:
        part = json.dumps(event, separators=(",", ":"), default=str).encode("utf-8")
        if self._parts and (len(self._parts) >= self.max_events or self._size + len(part) > self.max_bytes):
            self.flush()
        self._parts.append(part)
        self._size += len(part) + 1

    def flush(self) -> None:
        if not self._parts:
            return
        body = gzip.compress(b'{"events":[' + b",".join(self._parts) + b"]}", compresslevel=5)
        count = len(self._parts)
        result = self.api.request("POST", "/api/v1/events", data=body,
                                  headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
        self._parts = []
        self._size = 0
        self.counters.batches += 1
        self.counters.events += count
        self.counters.accepted += int((result or {}).get("accepted", 0))
        self.counters.duplicates += int((result or {}).get("duplicates", 0))
