"""The tracker as the syncer sees it: a synchronous event sink and the instance registry (watermark, health).

Why synchronous and not the process-wide asynchronous `Client`: a syncer is not a user task, it can wait; and it
may advance the watermark only after the tracker acknowledged every event of the cycle. The asynchronous client
drops events when its queue is full (right for tasks, wrong here). Batches are bounded (count and bytes), so a
backfill of any size holds at most one batch in memory.
"""

from __future__ import annotations

import gzip
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from runlink.config import Config

log = logging.getLogger("runlink.syncer")


class TrackerError(RuntimeError):
    """The tracker refused or could not be reached (after retries)."""


@dataclass
class SinkCounters:
    batches: int = 0
    events: int = 0
    accepted: int = 0
    duplicates: int = 0


class TrackerApi:
    """HTTP calls to the tracker with the configured token (never logged)."""

    def __init__(self, config: Config, timeout_s: float = 60.0, retries: int = 5) -> None:
        self.url = config.url.rstrip("/")
        self.timeout_s = timeout_s
        self.retries = retries
        self.session = requests.Session()
        if config.token:
            self.session.headers["Authorization"] = f"Bearer {config.token}"

    def __repr__(self) -> str:
        return f"TrackerApi(url={self.url!r})"

    def close(self) -> None:
        self.session.close()

    def request(self, method: str, path: str, *, json_body: Any = None, data: bytes | None = None,
                headers: dict[str, str] | None = None, allow_404: bool = False) -> Any:
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                response = self.session.request(method, self.url + path, json=json_body, data=data,
                                                headers=headers, timeout=self.timeout_s)
            except requests.RequestException as exc:
                if attempt == self.retries:
                    raise TrackerError(f"{method} {path}: {type(exc).__name__}") from None
                time.sleep(delay)  # backoff before retrying a request that failed
                delay = min(delay * 2, 10.0)
                continue
            if response.status_code == 404 and allow_404:
                return None
            if response.status_code == 429 or response.status_code >= 500:
                if attempt == self.retries:
                    raise TrackerError(f"{method} {path}: HTTP {response.status_code}")
                time.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            if response.status_code >= 400:
                raise TrackerError(f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}")
            return response.json() if response.content else None
        raise TrackerError(f"{method} {path}: no answer")

    # -- registry --------------------------------------------------------------------------------------
    def instance(self, name: str) -> dict[str, Any] | None:
        return self.request("GET", f"/api/v1/airflow-instances/{name}", allow_404=True)

    def syncer_config(self, name: str) -> dict[str, Any] | None:
        """Public view + reference + sealed secret (admin tokens only; an ingest token gets 403)."""
        return self.request("GET", f"/api/v1/airflow-instances/{name}/syncer-config", allow_404=True)

    def instances(self) -> list[dict[str, Any]]:
        return self.request("GET", "/api/v1/airflow-instances")["items"]

    def create_instance(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/api/v1/airflow-instances", json_body=body)

    def add_alias(self, name: str, uid: str) -> dict[str, Any]:
        """Another uid of the instance `name`; returns the instance's public view (with its aliases)."""
        return self.request("POST", f"/api/v1/airflow-instances/{name}/aliases", json_body={"uid": uid})

    def remove_alias(self, name: str, uid: str) -> dict[str, Any]:
        return self.request("DELETE", f"/api/v1/airflow-instances/{name}/aliases/{quote(uid, safe='')}")

    def sync_state(self, name: str) -> dict[str, Any] | None:
        return self.request("GET", f"/api/v1/airflow-instances/{name}/sync-state", allow_404=True)

    def put_sync_state(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("PUT", f"/api/v1/airflow-instances/{name}/sync-state", json_body=body)


class EventSink:
    """Collects events into bounded batches and POSTs each one synchronously (gzip), counting what the tracker
    accepted as new and what it already had."""

    def __init__(self, api: TrackerApi, max_events: int = 500, max_bytes: int = 4 * 1024 * 1024) -> None:
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
