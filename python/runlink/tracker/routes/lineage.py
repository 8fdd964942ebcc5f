"""POST /api/v1/lineage: OpenLineage RunEvents (the path OpenLineage's HTTP transport calls by default).

The body is one RunEvent or an array of them; they are translated (tracker/openlineage.py) into protocol v1 events
and stored by the same ingest as /api/v1/events, in one transaction: same validation, same dedupe, same hooks.
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Depends, HTTPException, Request

from runlink.protocol import ProtocolError, validate_batch
from runlink.tracker import ingest, openlineage, security
from runlink.tracker.auth import require
from runlink.tracker.routes import JSONBody
from runlink.tracker.routes.events import _decompress, handle_batch, run_ingest_hooks

router = APIRouter()

REQUEST_BODY = {
    "required": True,
    "description": "One OpenLineage RunEvent, or an array of them (`Content-Encoding: gzip` accepted).",
    "content": {"application/json": {"schema": {"oneOf": [
        {"$ref": "#/components/schemas/OpenLineageRunEvent"},
        {"type": "array", "items": {"$ref": "#/components/schemas/OpenLineageRunEvent"}, "maxItems": 10000},
    ]}}},
}
#: the parts of OpenLineage's RunEvent the tracker reads (the full spec: https://openlineage.io/spec/)
RUN_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["eventTime", "run", "job"],
    "properties": {
        "eventType": {"type": "string", "enum": ["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]},
        "eventTime": {"type": "string", "format": "date-time"},
        "producer": {"type": "string"},
        "schemaURL": {"type": "string"},
        "run": {"type": "object", "required": ["runId"],
                "properties": {"runId": {"type": "string", "maxLength": 64}, "facets": {"type": "object"}}},
        "job": {"type": "object", "required": ["namespace", "name"],
                "properties": {"namespace": {"type": "string"}, "name": {"type": "string"},
                               "facets": {"type": "object"}}},
        "inputs": {"type": "array", "items": {"type": "object"}},
        "outputs": {"type": "array", "items": {"type": "object"}},
    },
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Translated and stored: `accepted`, `duplicates`, `ignored` (not mappable, or not a "
                         "RunEvent), `pending` (waiting for their parent run)"},
    400: {"description": "Body is not JSON, or not valid gzip"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Token scope does not allow ingest"},
    413: {"description": "Body over the size cap"},
    422: {"description": "Not an OpenLineage RunEvent, or it translates to an invalid event: detail names the "
                         "OpenLineage event index"},
}


def _process(state: Any, body: bytes, encoding: str) -> dict[str, int]:
    settings = state.settings
    if encoding == "gzip":
        body = _decompress(body, settings.max_decompressed_bytes)
    elif encoding not in ("", "identity"):
        raise HTTPException(400, f"unsupported Content-Encoding {encoding!r}")
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    ol_events = openlineage.parse_payload(parsed)
    if not ol_events:
        raise HTTPException(422, {"message": "no OpenLineage event in the body", "index": None, "field": None})
    if len(ol_events) > settings.max_events:
        raise HTTPException(422, {"message": f"at most {settings.max_events} events per request", "index": None,
                                  "field": None})
    prepared = None
    try:
        with state.db.write() as conn:
            derived, origin, translator = openlineage.translate_all(conn, ol_events)
            accepted = duplicates = 0
            if derived:
                security.sanitize(derived)
                try:
                    events = validate_batch({"events": derived}, max_events=max(settings.max_events, len(derived)))
                    prepared = ingest.prepare(events)
                except ProtocolError as exc:
                    where = origin[exc.index] if exc.index is not None and exc.index < len(origin) else None
                    raise ProtocolError(f"OpenLineage event {where}: {exc}", where, exc.field) from None
                accepted, duplicates = ingest.store(conn, prepared)
    except ProtocolError as exc:
        state.telemetry.events_rejected.inc(len(ol_events))
        raise HTTPException(422, exc.to_dict()) from None
    if accepted and prepared is not None:
        run_ingest_hooks(state, prepared)
    return {"accepted": accepted, "duplicates": duplicates, "ignored": translator.ignored,
            "pending": translator.pending}


@router.post(
    "/api/v1/lineage",
    response_class=JSONBody,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
    dependencies=[Depends(require("ingest"))],
)
async def post_lineage(request: Request) -> JSONBody:
    """Translate OpenLineage RunEvents into runlink events and store them like /api/v1/events does."""
    return await handle_batch(request, _process, status_code=200)
