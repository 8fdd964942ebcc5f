"""Access tokens: random secrets stored only as sha256 hashes, each with one scope, a name, an optional expiry.

Scopes: `ingest` may only POST events, `read` may GET, `admin` may do everything. Tokens are
secrets: nothing here logs them. A token can be revoked (kept, marked) or expire; either way it is refused
within `TokenCache.REVALIDATE_S` by every worker process of a running tracker, because each worker re-reads
the state of the tokens it has cached at most that often (one indexed query, only while requests come).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request
from sqlalchemy import Connection, select, update
from starlette.concurrency import run_in_threadpool

from runlink.instants import format_instant, parse_instant
from runlink.tracker.models import tokens
from runlink.tracker.security import TokenBuckets

SCOPES = ("ingest", "read", "admin")
TOKEN_PREFIX = "rl_"
#: how a token is shown in lists: the first hex digits of its hash (identifies it, reveals nothing)
TOKEN_ID_CHARS = 12


class TokenError(ValueError):
    """A token operation that cannot be done (unknown name, duplicate name, bad expiry); the message says why."""


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _now() -> datetime:
    return datetime.now(timezone.utc)


_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_expiry(text: str, now: datetime | None = None) -> datetime:
    """`30d`, `12h`, `90m`, `2w`, `3600s` from now, or an ISO-8601 date or instant (UTC when no offset).
    Must lie in the future."""
    now = now or _now()
    match = _DURATION.match(text)
    if match:
        seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
        if seconds <= 0:
            raise TokenError("expiry must be in the future")
        try:
            return now + timedelta(seconds=seconds)
        except OverflowError:
            raise TokenError(f"expiry {text!r} is too far away") from None
    when = parse_instant(text)
    if when is None:
        raise TokenError(f"expiry {text!r} is neither a duration (30d, 12h, 90m) nor an ISO-8601 instant")
    if when <= now:
        raise TokenError(f"expiry {text!r} is in the past")
    return when


def _epoch(instant: str | None) -> float | None:
    if not instant:
        return None
    moment = parse_instant(instant)
    return moment.timestamp() if moment else 0.0  # unparsable: treat as expired (fail closed)


def _valid(revoked_at: str | None, expires_at: str | None, now: float) -> bool:
    if revoked_at:
        return False
    expiry = _epoch(expires_at)
    return expiry is None or now < expiry


def create_token(conn: Connection, scope: str, name: str | None = None, token: str | None = None,
                 expires_at: datetime | None = None) -> str:
    """Store a token (hashed) and return the secret; the only time it exists in clear on the server.
    A name identifies the token for `token list|revoke`: two live tokens cannot share one."""
    if scope not in SCOPES:
        raise TokenError(f"scope must be one of {', '.join(SCOPES)}")
    if name is not None:
        name = name.strip() or None
    if name is not None and _live_by_name(conn, name):
        raise TokenError(f"a token named {name!r} exists (revoke it first, or choose another name)")
    token = token or new_token()
    conn.execute(
        tokens.insert().values(
            token_hash=hash_token(token),
            scope=scope,
            name=name,
            created_at=format_instant(_now()),
            expires_at=format_instant(expires_at) if expires_at is not None else None,
        )
    )
    return token


def _live_by_name(conn: Connection, name: str) -> list[Any]:
    rows = conn.execute(select(tokens.c.token_hash, tokens.c.revoked_at, tokens.c.expires_at)
                        .where(tokens.c.name == name)).all()
    now = time.time()
    return [r for r in rows if _valid(r.revoked_at, r.expires_at, now)]


def scope_of(conn: Connection, token: str) -> str | None:
    """The scope of a live token (not revoked, not expired), else None."""
    row = conn.execute(select(tokens.c.scope, tokens.c.revoked_at, tokens.c.expires_at)
                       .where(tokens.c.token_hash == hash_token(token))).first()
    if row is None or not _valid(row.revoked_at, row.expires_at, time.time()):
        return None
    return row.scope


def list_tokens(conn: Connection) -> list[dict[str, Any]]:
    """Every token, oldest first: name, id (hash prefix), scope, state, times. Never the secret."""
    now = time.time()
    out = []
    for row in conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.token_hash)):
        if row.revoked_at:
            state = "revoked"
        elif not _valid(None, row.expires_at, now):
            state = "expired"
        else:
            state = "active"
        out.append({"name": row.name, "id": row.token_hash[:TOKEN_ID_CHARS], "scope": row.scope, "state": state,
                    "created_at": row.created_at, "last_used_at": row.last_used_at,
                    "expires_at": row.expires_at, "revoked_at": row.revoked_at})
    return out


def revoke_token(conn: Connection, name_or_id: str) -> dict[str, Any]:
    """Revoke the live token with this name (or id, the hash prefix `token list` shows) and end its UI
    sessions. Returns the token's listing entry."""
    from runlink.tracker.ui.session import end_sessions_of

    key = name_or_id.strip()
    live = _live_by_name(conn, key) if key else []
    if not live and len(key) >= 6 and re.fullmatch(r"[0-9a-f]+", key):
        now = time.time()
        rows = conn.execute(select(tokens.c.token_hash, tokens.c.revoked_at, tokens.c.expires_at)
                            .where(tokens.c.token_hash.like(key + "%"))).all()
        live = [r for r in rows if _valid(r.revoked_at, r.expires_at, now)]
    if not live:
        raise TokenError(f"no live token named {name_or_id!r}")
    if len(live) > 1:
        raise TokenError(f"{len(live)} live tokens match {name_or_id!r}: revoke by id (runlink token list)")
    digest = live[0].token_hash
    conn.execute(update(tokens).where(tokens.c.token_hash == digest).values(revoked_at=format_instant(_now())))
    end_sessions_of(conn, [digest])
    return next(t for t in list_tokens(conn) if t["id"] == digest[:TOKEN_ID_CHARS])


def write_token_file(path: Path, token: str) -> None:
    """Write the token readable by its owner only (0600 from creation, no window where it is wider)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)


def ensure_admin_token(conn: Connection, path: Path) -> bool:
    """First start: create an admin token and write it to `path`. Returns True when one was created.

    A token file that exists but is unknown to this database (a new `--db`) is registered as admin:
    the file is the local operator's secret (mode 0600, tightened here if it was wider), and this keeps
    `runlink` commands working. A token file whose token was revoked stays revoked.
    """
    try:
        existing = path.read_text("utf-8").strip()
        os.chmod(path, 0o600)
    except OSError:
        existing = ""
    if existing:
        known = conn.execute(select(tokens.c.token_hash).where(tokens.c.token_hash == hash_token(existing))).first()
        if known is None:
            name = "token file"
            if _live_by_name(conn, name):
                name = f"token file {hash_token(existing)[:TOKEN_ID_CHARS]}"
            create_token(conn, "admin", name=name, token=existing)
        return False
    name = "first start" if not _live_by_name(conn, "first start") else None
    write_token_file(path, create_token(conn, "admin", name=name))
    return True


@dataclass(frozen=True)
class _Known:
    scope: str
    expires: float | None  # epoch seconds


#: the answer `TokenCache.cached` gives for a token it knows to be expired (refused without a lookup)
REFUSED = ""


class TooManyUnknownTokens(HTTPException):
    """429: this client address sent more unknown tokens than `UNKNOWN_TOKEN_RATE` allows."""

    def __init__(self, wait: float) -> None:
        super().__init__(429, "too many unknown tokens from this address; retry later",
                         headers={"Retry-After": str(max(1, int(wait + 0.999)))})


class TokenCache:
    """hash -> scope for the tokens this worker has seen, so the hot ingest path does not query per request.

    Revocation: the cached tokens are re-read (`revalidate`) at most every REVALIDATE_S, on the next request,
    so a token revoked by any worker or by `runlink token revoke` is refused by this worker within that time.
    Expiry is checked on every request from the cached expiry. Unknown tokens cost a database lookup, so they
    are rate limited per client address (UNKNOWN_TOKEN_RATE per second, UNKNOWN_TOKEN_BURST at once).
    Last use is written at most every LAST_USED_S per token and worker (off the request path)."""

    REVALIDATE_S = 0.5
    LAST_USED_S = 30.0
    UNKNOWN_TOKEN_RATE = 10.0
    UNKNOWN_TOKEN_BURST = 50
    MAX_KNOWN = 10000

    def __init__(self, db: Any = None) -> None:
        self.db = db
        self._known: dict[str, _Known] = {}
        self._checked_at = time.monotonic()
        self._inflight: asyncio.Task[None] | None = None
        self._lock = threading.Lock()
        self._used: set[str] = set()
        self._flushed: set[str] = set()
        self._flushed_at = time.monotonic()
        self.unknown = TokenBuckets(self.UNKNOWN_TOKEN_RATE, self.UNKNOWN_TOKEN_BURST)

    # -- the cache ------------------------------------------------------------------------------------------
    def cached(self, token: str) -> str | None:
        """The scope of a token seen before, REFUSED if it has expired since, None if unknown (no database)."""
        digest = hash_token(token)
        known = self._known.get(digest)
        if known is None:
            return None
        if known.expires is not None and time.time() >= known.expires:
            return REFUSED
        self._used.add(digest)
        return known.scope

    def lookup(self, conn_factory: Any, token: str) -> str | None:
        """The scope of a live token (cache, else database); None for unknown, revoked or expired tokens.
        Blocking: call it from a thread (sync dependencies run in FastAPI's threadpool)."""
        if self.due():
            self.revalidate(conn_factory)
        scope = self.cached(token)
        if scope is not None:
            return scope or None
        digest = hash_token(token)
        with conn_factory() as conn:
            row = conn.execute(select(tokens.c.scope, tokens.c.revoked_at, tokens.c.expires_at)
                               .where(tokens.c.token_hash == digest)).first()
        if row is None or not _valid(row.revoked_at, row.expires_at, time.time()):
            return None
        if len(self._known) < self.MAX_KNOWN:
            self._known[digest] = _Known(row.scope, _epoch(row.expires_at))
        self._used.add(digest)
        return row.scope

    # -- revocation -----------------------------------------------------------------------------------------
    def due(self) -> bool:
        return time.monotonic() - self._checked_at >= self.REVALIDATE_S

    def revalidate(self, conn_factory: Any) -> None:
        """Re-read the cached tokens' state: revoked, expired or deleted ones leave the cache."""
        with self._lock:
            if not self.due():
                return
            started = time.monotonic()
            digests = list(self._known)
            fresh: dict[str, _Known] = {}
            now = time.time()
            with conn_factory() as conn:
                for i in range(0, len(digests), 500):
                    chunk = digests[i:i + 500]
                    for row in conn.execute(select(tokens.c.token_hash, tokens.c.scope, tokens.c.revoked_at,
                                                   tokens.c.expires_at).where(tokens.c.token_hash.in_(chunk))):
                        if _valid(row.revoked_at, row.expires_at, now):
                            fresh[row.token_hash] = _Known(row.scope, _epoch(row.expires_at))
            self._known = fresh
            self._checked_at = started

    async def revalidate_async(self, conn_factory: Any) -> None:
        """`revalidate` off the event loop, once at a time: concurrent requests wait for the same pass."""
        task = self._inflight
        if task is None:
            task = self._inflight = asyncio.get_running_loop().create_task(self._revalidate_task(conn_factory))
        await asyncio.shield(task)

    async def _revalidate_task(self, conn_factory: Any) -> None:
        try:
            await run_in_threadpool(self.revalidate, conn_factory)
        finally:
            self._inflight = None
        if self.db is not None and self._last_used_due():
            asyncio.get_running_loop().run_in_executor(None, self.flush_last_used)

    # -- last use -------------------------------------------------------------------------------------------
    def _last_used_due(self) -> bool:
        return bool(self._used) and (not self._used <= self._flushed
                                     or time.monotonic() - self._flushed_at >= self.LAST_USED_S)

    def flush_last_used(self) -> None:
        """Write `last_used_at` for the tokens used since the last flush (never fails a request)."""
        used, self._used = self._used, set()
        self._flushed |= used
        self._flushed_at = time.monotonic()
        if not used or self.db is None:
            return
        stamp = format_instant(_now())
        try:
            with self.db.write(keys=()) as conn:  # row-level: ingest never queues behind it
                conn.execute(update(tokens).where(tokens.c.token_hash.in_(sorted(used)))
                             .values(last_used_at=stamp))
        except Exception:  # noqa: BLE001 - bookkeeping only; the next flush tries again
            self._used |= used


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if not header:
        return None
    kind, _, value = header.partition(" ")
    if kind.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def allowed(scope: str, need: str) -> bool:
    """Does a token of `scope` allow an action that needs `need` (ingest|read|admin)?"""
    return scope == "admin" or scope == need


def _client_address(request: Request) -> str:
    return request.client.host if request.client else "?"


def check_unknown_token_rate(cache: TokenCache, request: Request) -> None:
    """429 before a database lookup when this address sends unknown tokens over the rate."""
    wait = cache.unknown.take(_client_address(request))
    if wait > 0:
        raise TooManyUnknownTokens(wait)


async def token_scope(request: Request) -> str:
    """The scope of the request's bearer token; 401 when it has none or it is unknown, revoked or expired.

    Async, so a known token is checked on the event loop (no thread hand-off per request); an unknown one is
    rate limited per client address before its database lookup."""
    state = request.app.state
    token = bearer(request)
    if token is None:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    cache: TokenCache = state.tokens
    if cache.due():
        await cache.revalidate_async(state.db.read)
    scope = cache.cached(token)
    if scope is None:
        check_unknown_token_rate(cache, request)
        scope = await run_in_threadpool(cache.lookup, state.db.read, token)
    if not scope:
        raise HTTPException(401, "invalid, revoked or expired token", headers={"WWW-Authenticate": "Bearer"})
    return scope


def require(need: str):
    """A FastAPI dependency: 401 without a valid token, 403 with a token of the wrong scope.

    With `--open`, reads need no token (a local single-user tracker for the UI); ingest and admin still do.
    """

    async def dependency(request: Request) -> str | None:
        token = bearer(request)
        if token is None and need == "read" and request.app.state.settings.open_reads:
            return None
        scope = await token_scope(request)
        if not allowed(scope, need):
            raise HTTPException(403, f"a {scope} token cannot do this (needs {need})")
        return scope

    return dependency
