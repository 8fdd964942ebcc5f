"""Tracker-side hardening: per-token rate limits, request size caps, secret masking and size caps on what is stored.

Why here and not only in the agents: the tracker is the last line of defence. Agents mask and cap too, but any
producer (an old agent, an OpenLineage client, a hand-written script) can send secrets in params or Spark conf,
or a 10,000-column schema; the tracker must neither store the secret nor the unbounded list.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
from starlette.exceptions import HTTPException

MASK = "***"
#: keys whose values are secrets wherever they appear in params, conf, env (Airflow's and Spark's own lists, merged)
SECRET_KEY = re.compile(
    r"(?i)(passw(or)?d|passwd|\bpwd\b|secret|token|api[-_.]?key|apikey|credential|private[-_.]?key|"
    r"access[-_.]?key|authorization|auth[-_.]?header|session[-_.]?key|keytab|\bsas\b|connection[-_.]?string)"
)
#: runlink tokens and Authorization header values inside free text
SECRET_TEXT = re.compile(r"(rl_[A-Za-z0-9_\-]{16,}|(?i:bearer)\s+[A-Za-z0-9_\-.=]{16,})")
#: `password=...` / `token: ...` inside free text (error messages, logs, commands)
SECRET_ASSIGN = re.compile(r"(?i)\b(passw(?:or)?d|passwd|pwd|secret|token|api[-_]?key)(\s*[=:]\s*)([^\s,;&'\"]+)")
#: a URL's user:password@
URL_PASSWORD = re.compile(r"(?<=://)([^:/@\s]+):([^@/\s]+)@")

MAX_SCHEMA_FIELDS = 1000
MAX_COLUMN_STATS = 1000

# event types whose payloads carry params / conf / free text (the hot Spark stage/job/metric types are skipped)
_MASKED_TYPES = frozenset({"task_attempt.start", "task_attempt.end", "task_attempt.state", "dag_run.start",
                           "dag_run.end", "dag_run.state", "spark_app.start", "log", "sql_query", "dag.definition",
                           "agent_health"})


def _mask_text(text: str) -> str:
    if "rl_" in text or "earer" in text:
        text = SECRET_TEXT.sub(MASK, text)
    if "=" in text or ":" in text:
        text = SECRET_ASSIGN.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    if "://" in text and "@" in text:
        text = URL_PASSWORD.sub(lambda m: m.group(1) + ":" + MASK + "@", text)
    return text


def mask_value(value: Any, depth: int = 0) -> Any:
    """A copy with secret-named keys' values replaced by *** and tokens/URL passwords cut out of text."""
    if depth > 20:
        return value
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, str) and SECRET_KEY.search(key) and item not in (None, "", MASK) \
                    and not isinstance(item, (dict, list, bool)):
                out[key] = MASK
            else:
                out[key] = mask_value(item, depth + 1)
        return out
    if isinstance(value, list):
        return [mask_value(v, depth + 1) for v in value]
    if isinstance(value, str):
        return _mask_text(value)
    return value


def _cap_dataset(ds: dict[str, Any]) -> None:
    schema = ds.get("schema")
    if isinstance(schema, list) and len(schema) > MAX_SCHEMA_FIELDS:
        ds["schema"] = schema[:MAX_SCHEMA_FIELDS]
        ds["schema_truncated"] = True
    stats = ds.get("column_stats")
    if isinstance(stats, dict) and len(stats) > MAX_COLUMN_STATS:
        ds["column_stats"] = dict(list(stats.items())[:MAX_COLUMN_STATS])


def sanitize(events: list[Any]) -> list[Any]:
    """Mask secrets and cap unbounded lists in place, before validation and storage (raw JSON included)."""
    for event in events:
        if not isinstance(event, dict):
            continue
        payload = event.get("payload")
        if not isinstance(payload, dict):
            continue
        type_ = event.get("type")
        if not isinstance(type_, str):
            continue  # validation rejects it (422); nothing to mask in what will not be stored
        if type_ in _MASKED_TYPES:
            event["payload"] = payload = mask_value(payload)
        if type_ == "dataset":
            _cap_dataset(payload)
        elif type_ == "sql_query":
            for key in ("inputs", "outputs"):
                for ds in payload.get(key) or ():
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

_EXEMPT_PREFIXES = ("/healthz", "/ui/static/")
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


async def _send_json(send: Callable[[Any], Awaitable[None]], status: int, body: dict[str, Any],
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    data = orjson.dumps(body)
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": data})
