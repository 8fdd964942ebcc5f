"""Health (/healthz), liveness (/livez), readiness (/readyz) and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from runlink import __version__
from runlink.tracker.db import migration_state
from runlink.tracker.routes import JSONBody

router = APIRouter()


@router.get("/healthz", response_class=JSONBody)
def healthz(request: Request) -> JSONBody:
    """Answers once the database is migrated and reachable (what test fixtures and probes wait for)."""
    with request.app.state.db.read() as conn:
        conn.execute(text("SELECT 1"))
    return JSONBody({"status": "ok", "version": __version__, "db": request.app.state.db.engine.dialect.name,
                     "worker": os.getpid()})


@router.get("/livez", response_class=JSONBody)
def livez() -> JSONBody:
    """The process answers (no database): a load balancer restarts a replica that stops answering this."""
    return JSONBody({"status": "alive", "worker": os.getpid()})


@router.get("/readyz", response_class=JSONBody)
def readyz(request: Request) -> JSONBody:
    """Ready for traffic: the database answers and its schema is at this release's head migration; 503 (with
    the reason) otherwise, so a load balancer sends nothing to a replica that could not store it."""
    try:
        with request.app.state.db.read() as conn:
            current, head = migration_state(conn)
    except SQLAlchemyError as exc:
        return JSONBody({"status": "unavailable", "reason": f"database: {type(exc).__name__}"}, status_code=503)
    if current != head:
        return JSONBody({"status": "unavailable", "reason": f"schema at {current}, this release needs {head}"},
                        status_code=503)
    return JSONBody({"status": "ready", "schema": head, "worker": os.getpid()})


@router.get("/metrics")
def prometheus(request: Request) -> Response:
    return Response(request.app.state.telemetry.render(), media_type=CONTENT_TYPE_LATEST)
