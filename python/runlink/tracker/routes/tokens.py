"""Token management over HTTP (admin only): create (the secret is returned once, stored hashed), list (never the
secret), revoke (refused by every worker within a second, UI sessions ended)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from runlink.instants import format_instant
from runlink.tracker.auth import SCOPES, TokenError, create_token, list_tokens, parse_expiry, require, revoke_token
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("admin"))], tags=["tokens"])


class TokenRequest(BaseModel):
    scope: str = Field(description="ingest | read | admin")
    name: str | None = Field(None, max_length=200, description="unique among live tokens; used to revoke it")
    expires: str | None = Field(None, description="a duration from now (30d, 12h, 90m, 2w) or an ISO-8601 instant")


class CreatedToken(BaseModel):
    token: str = Field(description="the secret: shown this once, stored only as its sha256")
    scope: str
    name: str | None = None
    expires_at: str | None = None


class TokenInfo(BaseModel):
    name: str | None
    id: str = Field(description="the first hex digits of the token's sha256: identifies it, reveals nothing")
    scope: str
    state: str = Field(description="active | expired | revoked")
    created_at: str
    last_used_at: str | None = Field(description="updated at most every 30 s per worker")
    expires_at: str | None
    revoked_at: str | None


class TokenList(BaseModel):
    items: list[TokenInfo]


ERRORS = {404: {"description": "No live token with this name or id"},
          409: {"description": "Several live tokens match: revoke by id"},
          422: {"description": "Bad scope, name or expiry: detail has message and field"}}


@router.post("/tokens", status_code=201, response_class=JSONBody, response_model=CreatedToken,
             responses={422: ERRORS[422]})
def post_token(request: Request, body: TokenRequest) -> JSONBody:
    if body.scope not in SCOPES:
        raise HTTPException(422, {"message": f"scope must be one of {', '.join(SCOPES)}", "field": "scope"})
    try:
        expires_at = parse_expiry(body.expires) if body.expires else None
        with request.app.state.db.write() as conn:
            token = create_token(conn, body.scope, body.name, expires_at=expires_at)
    except TokenError as exc:
        field = "expires" if "expiry" in str(exc) else "name"
        raise HTTPException(422, {"message": str(exc), "field": field}) from None
    return JSONBody({"token": token, "scope": body.scope, "name": (body.name or "").strip() or None,
                     "expires_at": format_instant(expires_at) if expires_at else None}, status_code=201)


@router.get("/tokens", response_class=JSONBody, response_model=TokenList)
def get_tokens(request: Request) -> JSONBody:
    """Every token with its name, scope, state and times; never the secret."""
    with request.app.state.db.read() as conn:
        return JSONBody({"items": list_tokens(conn)})


@router.delete("/tokens/{name}", response_class=JSONBody, response_model=TokenInfo,
               responses={404: ERRORS[404], 409: ERRORS[409]})
def delete_token(request: Request, name: str) -> JSONBody:
    """Revoke the live token with this name (or id): refused by every worker within a second; its UI sessions
    end now. The token stays listed as revoked."""
    try:
        with request.app.state.db.write() as conn:
            revoked = revoke_token(conn, name)
    except TokenError as exc:
        raise HTTPException(409 if "live tokens match" in str(exc) else 404, str(exc)) from None
    return JSONBody(revoked)
