"""POST /api/v1/events: one batch, validated whole, stored in one transaction or not at all.

The route reads the capped body and answers; the pipeline (tracker/ingest/pipeline.py) does the rest. `handle_batch`
is the frame both event routes share (this one and the OpenLineage route).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from runlink.protocol import ProtocolError
from runlink.tracker.auth import require
from runlink.tracker.ingest import pipeline
from runlink.tracker.routes import JSONBody

router = APIRouter()

REQUEST_BODY = {
    "required": True,
    "description": "A batch of protocol v1 events (`Content-Encoding: gzip` accepted).",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventBatch"}}},
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "Stored (`accepted` new events, `duplicates` already known)"},
    400: {"description": "Body is not JSON, or not valid gzip"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Token scope does not allow ingest"},
    413: {"description": "Body over the size cap (compressed or decompressed)"},
    422: {"description": "Batch does not match the protocol: detail has message, index and field"},
}


async def _read_capped(request: Request, cap: int) -> bytes:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > cap:
        raise HTTPException(413, f"body over {cap} bytes")
    parts = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > cap:
            raise HTTPException(413, f"body over {cap} bytes")
        parts.append(chunk)
    return b"".join(parts)


@router.post(
    "/api/v1/events",
    status_code=202,
    response_class=JSONBody,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
    dependencies=[Depends(require("ingest"))],
)
async def post_events(request: Request) -> JSONBody:
    """Validate the whole batch, then store it in one transaction; replays of stored ids change nothing."""
    return await handle_batch(request, status_code=202)


async def handle_batch(request: Request, status_code: int,
                       translation: pipeline.Translation | None = None) -> JSONBody:
    """The event routes' shared frame: capped body, the pipeline off the event loop, its refusals as HTTP errors,
    telemetry either way."""
    state = request.app.state
    started = time.perf_counter()
    try:
        body = await _read_capped(request, state.settings.max_body_bytes)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        timings: dict[str, float] = {}
        try:
            async with getattr(state, "ingest_gate", None) or nullcontext():
                result = await run_in_threadpool(pipeline.ingest, state, body, encoding, translation, timings)
        except pipeline.Refused as exc:
            raise HTTPException(exc.status, exc.detail) from None
        except ProtocolError as exc:
            raise HTTPException(422, exc.to_dict()) from None
    except HTTPException as exc:
        state.telemetry.batches_rejected.labels(reason=str(exc.status_code)).inc()
        raise
    state.telemetry.events_ingested.inc(result["accepted"])
    state.telemetry.events_duplicate.inc(result["duplicates"])
    elapsed = time.perf_counter() - started
    state.telemetry.ingest_latency.observe(elapsed)
    state.telemetry.write_lock_wait.observe(timings["lock"])
    # the batch's own split, for load tests (the histograms above are per worker process)
    timing = ", ".join(f"{name};dur={seconds * 1000:.2f}" for name, seconds in (*timings.items(), ("total", elapsed)))
    return JSONBody(result, status_code=status_code, headers={"Server-Timing": timing})
