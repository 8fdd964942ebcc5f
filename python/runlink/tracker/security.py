"""Tracker-side hardening: per-token rate limits, request size caps, secret masking (runlink.masking, applied to
every event on ingest) and size caps on what is stored.

Why here and not only in the agents: the tracker is the last line of defence. Agents mask and cap too, but any
producer (an old agent, an OpenLineage client, a hand-written script) can send secrets in params or Spark conf,
or a 10,000-column schema; the tracker must neither store the secret nor the unbounded list.
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import orjson
from starlette.exceptions import HTTPException

from runlink.masking import mask_event

MAX_SCHEMA_FIELDS = 1000
MAX_COLUMN_STATS = 1000


def restrict_database_files(database_url: str) -> None:
    """A SQLite database, its WAL, shared memory and lock files readable by their owner only (0600).

    The file is created 0600 before SQLite opens it, because SQLite gives the WAL and -shm files it creates
    later the mode of the database file; files a previous version left wider are tightened."""
    if not database_url.startswith("sqlite:///") or database_url == "sqlite:///:memory:":
        return
    path = Path(database_url[len("sqlite:///"):].split("?", 1)[0])
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    except OSError:
        return
    for suffix in ("", "-wal", "-shm", "-journal", ".lock"):
        try:
            os.chmod(path.with_name(path.name + suffix), 0o600)
        except FileNotFoundError:
            continue


def _cap_dataset(ds: dict[str, Any]) -> None:
    schema = ds.get("schema")
    if isinstance(schema, list) and len(schema) > MAX_SCHEMA_FIELDS:
        ds["schema"] = schema[:MAX_SCHEMA_FIELDS]
        ds["schema_truncated"] = True
    stats = ds.get("column_stats")
    if isinstance(stats, dict) and len(stats) > MAX_COLUMN_STATS:
        ds["column_stats"] = dict(list(stats.items())[:MAX_COLUMN_STATS])


def sanitize(events: list[Any]) -> list[Any]:
    """Mask secrets (runlink.masking) and cap unbounded lists in place, before validation and storage (the
    audit copy included): nothing unmasked is ever stored, whatever produced the event."""
    for event in events:
        if not isinstance(event, dict):
            continue
        payload = event.get("payload")
        if not isinstance(payload, dict):
            continue
        type_ = event.get("type")
        if not isinstance(type_, str):
            continue  # validation rejects it (422); nothing to mask in what will not be stored
        mask_event(event)  # the one masking module: every string of every event type, before it is stored
        payload = event["payload"]
        if type_ == "dataset":
            _cap_dataset(payload)
        elif type_ == "sql_query":
            for key in ("inputs", "outputs"):
                listed = payload.get(key)
                for ds in listed if isinstance(listed, list) else ():  # a number here is the schema's 422
                    if isinstance(ds, dict):
                        _cap_dataset(ds)
    return events


# ---------------------------------------------------------------------------------------------- rate limits

class TokenBuckets:
    """One token bucket per key (a token's hash): `rate` requests/s sustained, `burst` at once. Bounded memory."""

    def __init__(self, rate: float, burst: int, max_keys: int = 10000) -> None:
        self.rate = float(rate)
        self.burst = float(max(1, burst))
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def take(self, key: str, now: float | None = None) -> float:
        """0.0 when allowed, else the seconds until one request would be."""
        now = time.monotonic() if now is None else now
        with self._lock:
            level, last = self._buckets.pop(key, (self.burst, now))
            level = min(self.burst, level + (now - last) * self.rate)
            if level >= 1.0:
                self._buckets[key] = (level - 1.0, now)
                wait = 0.0
            else:
                self._buckets[key] = (level, now)
                wait = (1.0 - level) / self.rate
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return wait


def _header(scope: MutableMapping[str, Any], name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key == name:
            return value.decode("latin-1")
    return None


def client_key(scope: MutableMapping[str, Any]) -> str:
    """The rate-limit key: the bearer token's hash; else the UI session cookie's; else the client address."""
    auth = _header(scope, b"authorization")
    if auth:
        kind, _, value = auth.partition(" ")
        if kind.lower() == "bearer" and value.strip():
            return "t:" + hashlib.sha256(value.strip().encode()).hexdigest()[:32]
    cookie = _header(scope, b"cookie")
    if cookie and "runlink_session=" in cookie:
        sid = cookie.split("runlink_session=", 1)[1].split(";", 1)[0]
        return "s:" + hashlib.sha256(sid.encode()).hexdigest()[:32]
    client = scope.get("client") or ("?", 0)
    return "ip:" + str(client[0])


class RequestTooLarge(HTTPException):
    def __init__(self, cap: int) -> None:
        super().__init__(413, f"body over {cap} bytes")


ASGIApp = Callable[[MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
                   Awaitable[None]]

_EXEMPT_PREFIXES = ("/healthz", "/livez", "/readyz", "/ui/static/")
_BULK_PATHS = ("/api/v1/events", "/api/v1/lineage")


class GuardMiddleware:
    """Pure ASGI: 429 + Retry-After over a token's rate; 413 for bodies over the cap of their route.

    Bulk routes (events, lineage) check their own (larger) caps; every other route gets `api_cap` bytes."""

    def __init__(self, app: ASGIApp, buckets: TokenBuckets | None, api_cap: int) -> None:
        self.app = app
        self.buckets = buckets
        self.api_cap = api_cap

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        if self.buckets is not None and not path.startswith(_EXEMPT_PREFIXES):
            wait = self.buckets.take(client_key(scope))
            if wait > 0:
                await _send_json(send, 429, {"detail": "rate limit exceeded for this token; retry later"},
                                 [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
                return
        if path in _BULK_PATHS:
            await self.app(scope, receive, send)
            return
        cap = self.api_cap
        length = _header(scope, b"content-length")
        if length is not None and length.isdigit() and int(length) > cap:
            await _send_json(send, 413, {"detail": f"body over {cap} bytes"})
            return
        seen = 0

        async def capped_receive() -> Any:
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body") or b"")
                if seen > cap:
                    raise RequestTooLarge(cap)
            return message

        await self.app(scope, capped_receive, send)


LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_name(header: str | None) -> str | None:
    """The name part of a Host header, lowercased, without the port (`[::1]:8686` -> `[::1]`)."""
    if not header:
        return None
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        return header[:end + 1] if end > 0 else None
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class HostGuardMiddleware:
    """Pure ASGI: 400 for a request whose Host header is not an allowed name.

    With `--open` reads need no token, so a web page that re-points its own DNS name at 127.0.0.1 (DNS
    rebinding) could read everything and post the UI's forms; its requests carry that foreign name as Host."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = frozenset(a.strip().lower() for a in allowed)

    async def __call__(self, scope: MutableMapping[str, Any], receive: Callable[[], Awaitable[Any]],
                       send: Callable[[Any], Awaitable[None]]) -> None:
        if scope["type"] == "http" and host_name(_header(scope, b"host")) not in self.allowed:
            await _send_json(send, 400, {"detail": "Host not allowed: this tracker answers only to "
                                                   + ", ".join(sorted(self.allowed)) + " (--allowed-host)"})
            return
        await self.app(scope, receive, send)


async def _send_json(send: Callable[[Any], Awaitable[None]], status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})
