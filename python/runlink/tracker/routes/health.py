"""Liveness and Prometheus metrics."""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from runlink import __version__
from runlink.tracker.routes import JSONBody

router = APIRouter()


@router.get("/healthz", response_class=JSONBody)
def healthz(request: Request) -> JSONBody:
    """Answers once the database is migrated and reachable (what test fixtures and probes wait for)."""
    with request.app.state.db.read() as conn:
        conn.execute(text("SELECT 1"))
    return JSONBody({"status": "ok", "version": __version__, "db": request.app.state.db.engine.dialect.name,
                     "worker": os.getpid()})


@router.get("/metrics")
def prometheus(request: Request) -> Response:
    return Response(request.app.state.telemetry.render(), media_type=CONTENT_TYPE_LATEST)
