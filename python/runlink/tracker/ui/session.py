"""UI sessions: a token login gives a server-side session; the browser holds only a signed session id.

Cookie `runlink_session` = `<id>.<hmac>` (HttpOnly, SameSite=Strict, Secure when served over https). The
server stores sha256(id) with the scope and a CSRF synchronizer token that every state-changing form must echo.
The HMAC key lives in `$RUNLINK_HOME/ui_session.key` (0600), shared by the worker processes of one tracker.
With `--open` (local single-user) a visitor gets an `open` session without logging in.

The second half is the same session over HTTP: the signed cookies, the session of a request (pages and forms
call `ui_session` first), the CSRF check of every form and the rights a form needs.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from fastapi import HTTPException, Request, Response
from sqlalchemy import Column, Connection, String, Table, delete, select

from runlink.secret_files import create_once
from runlink.tracker.models import INSTANT, metadata, tokens

COOKIE = "runlink_session"
LOGIN_COOKIE = "runlink_login"
SESSION_HOURS = 12

ui_sessions = Table(
    "ui_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("token_hash", String(64)),
    Column("csrf", String(64), nullable=False),
    Column("created_at", String(INSTANT), nullable=False),
    Column("expires_at", String(INSTANT), nullable=False),
)


@dataclass(frozen=True)
class Session:
    scope: str  # read | admin | open
    csrf: str

    @property
    def can_manage(self) -> bool:
        """Alert rules and manual resolves: admin tokens, or the local single-user (`--open`) session."""
        return self.scope in ("admin", "open")


def _stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def load_key(home: Path) -> bytes:
    """The HMAC key; created once (O_EXCL, 0600) so concurrent workers agree on it."""
    path = home / "ui_session.key"
    try:
        return bytes.fromhex(path.read_text("utf-8").strip())
    except (OSError, ValueError):
        pass
    written = create_once(path, (secrets.token_hex(32) + "\n").encode("utf-8"))
    return bytes.fromhex(written.decode("utf-8").strip())


def sign(key: bytes, value: str) -> str:
    mac = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return value + "." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def unsign(key: bytes, signed: str | None) -> str | None:
    if not signed or "." not in signed:
        return None
    value, _, _mac = signed.rpartition(".")
    return value if hmac.compare_digest(sign(key, value), signed) else None


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def create(conn: Connection, scope: str, token_hash: str | None) -> tuple[str, Session]:
    """A new session; returns (cookie id in clear, session). Expired sessions are swept here."""
    now = datetime.now(timezone.utc)
    conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at < _stamp(now)))
    sid = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    conn.execute(ui_sessions.insert().values(id_hash=_hash(sid), scope=scope, token_hash=token_hash, csrf=csrf,
                                             created_at=_stamp(now),
                                             expires_at=_stamp(now + timedelta(hours=SESSION_HOURS))))
    return sid, Session(scope=scope, csrf=csrf)


def lookup(conn: Connection, sid: str) -> Session | None:
    """The live session of this id: not expired, and its token (if it has one) still live, so a revoked,
    expired or deleted token ends its sessions at once (checked on every page, which queries anyway)."""
    row = conn.execute(
        select(ui_sessions.c.scope, ui_sessions.c.csrf, ui_sessions.c.expires_at, ui_sessions.c.token_hash,
               tokens.c.token_hash.label("live_hash"), tokens.c.revoked_at, tokens.c.expires_at.label("token_expiry"))
        .select_from(ui_sessions.outerjoin(tokens, tokens.c.token_hash == ui_sessions.c.token_hash))
        .where(ui_sessions.c.id_hash == _hash(sid))).first()
    now = _stamp(datetime.now(timezone.utc))  # the same spelling as auth's format_instant: comparable text
    if row is None or row.expires_at < now:
        return None
    if row.token_hash is not None and (row.live_hash is None or row.revoked_at is not None
                                       or (row.token_expiry is not None and row.token_expiry <= now)):
        return None
    return Session(scope=row.scope, csrf=row.csrf)


def end_sessions_of(conn: Connection, token_hashes: list[str]) -> int:
    """Delete the UI sessions logged in with these tokens (their revocation); returns how many."""
    if not token_hashes:
        return 0
    return conn.execute(delete(ui_sessions).where(ui_sessions.c.token_hash.in_(token_hashes))).rowcount or 0


def destroy(conn: Connection, sid: str) -> None:
    conn.execute(delete(ui_sessions).where(ui_sessions.c.id_hash == _hash(sid)))


def csrf_ok(session: Session | None, submitted: str | None) -> bool:
    return bool(session and submitted and hmac.compare_digest(session.csrf, submitted))


# ---------------------------------------------------------------- the session over HTTP

def _key(request: Request) -> bytes:
    state = request.app.state
    key = getattr(state, "ui_key", None)
    if key is None:
        key = load_key(state.settings.home)
        state.ui_key = key
    return key


def sign_for(request: Request, value: str) -> str:
    return sign(_key(request), value)


def unsign_from(request: Request, cookie: str) -> str | None:
    """The value of a signed cookie of this request; None when absent or tampered with."""
    return unsign(_key(request), request.cookies.get(cookie))


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=request.url.scheme == "https")


class LoginRequired(Exception):
    """Raised by `ui_session` when the visitor must log in (turned into a redirect)."""


def ui_session(request: Request) -> Session:
    """What every page and form asks first: the session of the cookie, or (with --open) a fresh local session."""
    sid = unsign_from(request, COOKIE)
    session = None
    if sid:
        with request.app.state.db.read() as conn:
            session = lookup(conn, sid)
    if session is None and request.app.state.settings.open_reads:
        with request.app.state.db.write() as conn:
            sid, session = create(conn, "open", None)
        request.state.new_sid = sid
    if session is None:
        raise LoginRequired()
    request.state.ui_session = session
    return session


def set_session_cookie(request: Request, response: Response, sid: str) -> None:
    set_cookie(request, response, COOKIE, sign_for(request, sid), SESSION_HOURS * 3600)


def finish(request: Request, response: Response) -> Response:
    """The answer, with the cookie of a session `ui_session` has just opened (--open)."""
    new_sid = getattr(request.state, "new_sid", None)
    if new_sid:
        set_session_cookie(request, response, new_sid)
    return response


def check_csrf(session: Session, form: Any) -> None:
    if not csrf_ok(session, form.get("csrf")):
        raise HTTPException(403, "CSRF token missing or wrong: reload the page and submit again")


def need_manage(session: Session) -> None:
    if not session.can_manage:
        raise HTTPException(403, "managing alerts needs an admin token (log in with one)")


def need_admin(session: Session) -> None:
    """Tokens: admin sessions only (not `--open`: a tokenless local visitor must not manage tokens)."""
    if session.scope != "admin":
        raise HTTPException(403, "managing tokens needs an admin token (log in with one)")


def safe_next(value: str | None) -> str:
    """Only same-site paths under /ui (no open redirect)."""
    if value and value.startswith("/ui") and not value.startswith("//") and "\\" not in value:
        return value
    return "/ui/dags"
