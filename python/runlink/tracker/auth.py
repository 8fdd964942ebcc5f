"""Access tokens: random secrets stored only as sha256 hashes, each with one scope.

Scopes: `ingest` may only POST events, `read` may GET, `admin` may do everything. Tokens are
secrets: nothing here logs them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path

from fastapi import HTTPException, Request
from sqlalchemy import Connection, select
from starlette.concurrency import run_in_threadpool

from runlink.context import format_instant
from runlink.tracker.models import tokens

SCOPES = ("ingest", "read", "admin")
TOKEN_PREFIX = "rl_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def create_token(conn: Connection, scope: str, name: str | None = None, token: str | None = None) -> str:
    """Store a token (hashed) and return the secret; the only time it exists in clear on the server."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {', '.join(SCOPES)}")
    token = token or new_token()
    conn.execute(
        tokens.insert().values(
            token_hash=hash_token(token),
            scope=scope,
            name=name,
            created_at=format_instant(datetime.now(timezone.utc)),
        )
    )
    return token


def scope_of(conn: Connection, token: str) -> str | None:
    return conn.execute(select(tokens.c.scope).where(tokens.c.token_hash == hash_token(token))).scalar()


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
    the file is the local operator's secret (mode 0600), and this keeps `runlink` commands working.
    """
    try:
        existing = path.read_text("utf-8").strip()
    except OSError:
        existing = ""
    if existing:
        if scope_of(conn, existing) is None:
            create_token(conn, "admin", name="token file", token=existing)
        return False
    write_token_file(path, create_token(conn, "admin", name="first start"))
    return True


class TokenCache:
    """hash -> scope, so the hot ingest path does not query the tokens table per request."""

    def __init__(self) -> None:
        self._known: dict[str, str] = {}

    def cached(self, token: str) -> str | None:
        """The scope of a token seen before (no database access: safe on the event loop)."""
        return self._known.get(hash_token(token))

    def lookup(self, conn_factory, token: str) -> str | None:  # noqa: ANN001
        digest = hash_token(token)
        scope = self._known.get(digest)
        if scope is None:
            with conn_factory() as conn:
                scope = conn.execute(select(tokens.c.scope).where(tokens.c.token_hash == digest)).scalar()
            if scope is not None:
                self._known[digest] = scope
        return scope


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


def require(need: str):
    """A FastAPI dependency: 401 without a valid token, 403 with a token of the wrong scope.

    With `--open`, reads need no token (a local single-user tracker for the UI); ingest and admin still do.
    """

    async def dependency(request: Request) -> str | None:
        # async, so a known token is checked on the event loop: no thread hand-off per request
        state = request.app.state
        token = bearer(request)
        if token is None:
            if need == "read" and state.settings.open_reads:
                return None
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        scope = state.tokens.cached(token)
        if scope is None:
            scope = await run_in_threadpool(state.tokens.lookup, state.db.read, token)
        if scope is None:
            raise HTTPException(401, "invalid token", headers={"WWW-Authenticate": "Bearer"})
        if not allowed(scope, need):
            raise HTTPException(403, f"a {scope} token cannot do this (needs {need})")
        return scope

    return dependency
