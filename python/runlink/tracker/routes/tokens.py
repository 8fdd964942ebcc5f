"""Token management over HTTP (admin only): the secret is returned once and stored hashed."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel

from runlink.tracker.auth import SCOPES, create_token, require
from runlink.tracker.routes import JSONBody

router = APIRouter(prefix="/api/v1", dependencies=[Depends(require("admin"))])


class TokenRequest(BaseModel):
    scope: str
    name: str | None = None


@router.post("/tokens", status_code=201, response_class=JSONBody)
def post_token(request: Request, body: TokenRequest) -> JSONBody:
    if body.scope not in SCOPES:
        raise HTTPException(422, {"message": f"scope must be one of {', '.join(SCOPES)}", "field": "scope"})
    with request.app.state.db.write() as conn:
        token = create_token(conn, body.scope, body.name)
    return JSONBody({"token": token, "scope": body.scope}, status_code=201)
