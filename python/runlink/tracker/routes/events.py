"""POST /api/v1/events: one batch, validated whole, stored in one transaction or not at all."""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from runlink.protocol import ProtocolError, validate_batch
from runlink.tracker import ingest, security
from runlink.tracker.auth import require
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


def _decompress(body: bytes, cap: int) -> bytes:
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, cap + 1)
        if len(out) > cap or decoder.unconsumed_tail:
            raise HTTPException(413, f"decompressed body over {cap} bytes")
        out += decoder.flush()
    except zlib.error:
        raise HTTPException(400, "body is not valid gzip") from None
    if not decoder.eof:
        raise HTTPException(400, "body is not valid gzip (truncated)")
    if len(out) > cap:
        raise HTTPException(413, f"decompressed body over {cap} bytes")
    return out


def _process(app_state: Any, body: bytes, encoding: str) -> dict[str, int]:
    settings = app_state.settings
    if encoding == "gzip":
        body = _decompress(body, settings.max_decompressed_bytes)
    elif encoding not in ("", "identity"):
        raise HTTPException(400, f"unsupported Content-Encoding {encoding!r}")
    try:
        batch = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    if isinstance(batch, dict) and isinstance(batch.get("events"), list):
        security.sanitize(batch["events"])  # mask secrets, cap unbounded lists: before validation and storage
    try:
        events = validate_batch(batch, max_events=settings.max_events)
        prepared = ingest.prepare(events)
    except ProtocolError as exc:
        if isinstance(batch, dict) and isinstance(batch.get("events"), list):
            app_state.telemetry.events_rejected.inc(len(batch["events"]))
        raise HTTPException(422, exc.to_dict()) from None
    rows = ingest.collect(prepared)  # outside the write lock: other workers write meanwhile
    with app_state.db.write() as conn:
        accepted, duplicates = ingest.store(conn, prepared, rows)
    if accepted:
        run_ingest_hooks(app_state, prepared)
    return {"accepted": accepted, "duplicates": duplicates}


def run_ingest_hooks(app_state: Any, prepared: ingest.Prepared) -> None:
    """Tell the after-commit listeners (alerts, OpenLineage export) about a stored batch; they never block."""
    for hook in getattr(app_state, "ingest_hooks", ()):
        hook(prepared)


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
    return await handle_batch(request, _process, status_code=202)


async def handle_batch(request: Request, process: Callable[[Any, bytes, str], dict[str, Any]],
                       status_code: int) -> JSONBody:
    """The bulk routes' shared frame: capped body, `process` off the event loop, telemetry either way."""
    state = request.app.state
    started = time.perf_counter()
    try:
        body = await _read_capped(request, state.settings.max_body_bytes)
        encoding = request.headers.get("content-encoding", "").strip().lower()
        async with getattr(state, "ingest_gate", None) or nullcontext():
            result = await run_in_threadpool(process, state, body, encoding)
    except HTTPException as exc:
        state.telemetry.batches_rejected.labels(reason=str(exc.status_code)).inc()
        raise
    state.telemetry.events_ingested.inc(result["accepted"])
    state.telemetry.events_duplicate.inc(result["duplicates"])
    state.telemetry.ingest_latency.observe(time.perf_counter() - started)
    return JSONBody(result, status_code=status_code)
