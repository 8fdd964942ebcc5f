"""POST /api/v1/lineage: OpenLineage RunEvents (the path OpenLineage's HTTP transport calls by default).

The body is one RunEvent or an array of them; they are translated (openlineage/receive.py) into protocol v1 events
and stored by the same ingest as /api/v1/events, in one transaction: same validation, same dedupe, same hooks.

GET /api/v1/lineage/pending and /api/v1/lineage/unlinked list the events still waiting for their parent run
(openlineage/pending.py). After every stored batch (either route) the waiting events that name one of its DAGs are
tried again: a child whose parent attempt runlink has just learned of is linked then.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from sqlalchemy import Connection
from starlette.concurrency import run_in_threadpool

from runlink.masking import mask_value
from runlink.tracker import ingest
from runlink.tracker.auth import require
from runlink.tracker.ingest import pipeline
from runlink.tracker.openlineage import pending as openlineage_pending
from runlink.tracker.openlineage import receive as openlineage
from runlink.tracker.routes import JSONBody
from runlink.tracker.routes.events import handle_batch

router = APIRouter()
log = logging.getLogger(__name__)

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
    200: {"description": "Translated and stored: `accepted` and `duplicates` (runlink events), `ignored` (not "
                         "mappable, or not a RunEvent), `pending` (waiting for their parent run: GET "
                         "/api/v1/lineage/pending), `children` (events recorded on a child run under its parent "
                         "attempt or DAG run), `linked` (waiting events this request linked)"},
    400: {"description": "Body is not JSON, or not valid gzip"},
    401: {"description": "Missing or invalid token"},
    403: {"description": "Token scope does not allow ingest"},
    413: {"description": "Body over the size cap"},
    422: {"description": "Not an OpenLineage RunEvent, or it translates to an invalid event: detail names the "
                         "OpenLineage event index"},
}


class _Translation:
    """The pipeline's translation step for an OpenLineage body (one per request): masked, checked, translated
    in the write transaction (tracker/openlineage)."""

    def read(self, parsed: Any, settings: Any) -> int:
        self.settings = settings
        # masked before anything is stored (pending raw events, dataset facts, runs): runlink.masking, one module
        self.ol_events = [mask_value(e) for e in openlineage.parse_payload(parsed)]
        if not self.ol_events:
            raise pipeline.Refused(422, {"message": "no OpenLineage event in the body", "index": None,
                                         "field": None})
        if len(self.ol_events) > settings.max_events:
            raise pipeline.Refused(422, {"message": f"at most {settings.max_events} events per request",
                                         "index": None, "field": None})
        return len(self.ol_events)

    def derive(self, conn: Connection) -> tuple[list[dict[str, Any]], list[int] | None]:
        derived, origin, self.translator = openlineage.translate_all(conn, self.ol_events)
        return derived, origin

    def finish(self, conn: Connection) -> dict[str, int]:
        translator = self.translator
        translator.apply_dataset_merges()
        openlineage_pending.expire(conn, self.settings.openlineage_pending_ttl_s)
        return {"ignored": translator.ignored, "pending": translator.pending, "children": translator.children,
                "linked": translator.linked_pending}


def link_waiting(state: Any, dag_ids: set[str] | None) -> int:
    """Retry the waiting events naming `dag_ids` (None: every pending one), then expire the old ones; returns
    how many linked. Runs in its own write transaction, which holds every write lock (the derived events may
    touch any DAG), so it is taken only when a read first finds a waiting row: after most batches none is."""
    with state.db.read() as conn:
        if not openlineage_pending.any_waiting(conn, dag_ids):
            return 0
    prepared = None
    with state.db.write() as conn:
        linked = 0
        rows = openlineage_pending.waiting_rows(conn, dag_ids, None if dag_ids is not None else "pending")
        if rows:
            derived, translator = openlineage.retry_pending(conn, rows)
            _, _, prepared = pipeline.store_derived(conn, derived, None, state.settings.max_events)
            translator.apply_dataset_merges()
            linked = translator.linked_pending
        openlineage_pending.expire(conn, state.settings.openlineage_pending_ttl_s)
    if prepared is not None:
        pipeline.run_hooks(state, prepared)
    return linked


class WaitingLinker:
    """Ingest hook: a stored batch may carry the attempt or DAG run a waiting OpenLineage child names."""

    def __init__(self, state: Any) -> None:
        self.state = state
        self.inside = threading.local()

    def after_ingest(self, prepared: ingest.Prepared) -> None:
        if getattr(self.inside, "busy", False) or prepared.lineage_waiting is False:
            return  # the events this hook itself stores; or none waited when the batch was stored
        dag_ids = {c.dag_id for c in prepared.contexts if c is not None and c.dag_id
                   and not c.dag_id.startswith("spark:")}
        if not dag_ids:
            return
        self.inside.busy = True
        try:
            link_waiting(self.state, dag_ids)
        except Exception:  # noqa: BLE001 - the batch is stored; a failed retry is retried by the next sweep
            log.exception("linking waiting OpenLineage events failed")
        finally:
            self.inside.busy = False


def install(app: FastAPI) -> None:
    """Register the waiting-event linker as an ingest hook."""
    app.state.ingest_hooks = [*getattr(app.state, "ingest_hooks", []), WaitingLinker(app.state).after_ingest]


@router.post(
    "/api/v1/lineage",
    response_class=JSONBody,
    openapi_extra={"requestBody": REQUEST_BODY},
    responses=RESPONSES,
    dependencies=[Depends(require("ingest"))],
)
async def post_lineage(request: Request) -> JSONBody:
    """Translate OpenLineage RunEvents into runlink events and store them like /api/v1/events does."""
    return await handle_batch(request, status_code=200, translation=_Translation())


def _waiting(request: Request, status: str, limit: int) -> dict[str, Any]:
    state = request.app.state
    link_waiting(state, None)
    with state.db.read() as conn:
        return {"status": status, "items": openlineage_pending.listing(conn, status, limit),
                "counts": openlineage_pending.counts(conn, state.settings.openlineage_pending_ttl_s),
                "ttl_s": state.settings.openlineage_pending_ttl_s}


@router.get("/api/v1/lineage/pending", dependencies=[Depends(require("read"))], response_class=JSONBody)
async def list_pending(request: Request, limit: int = Query(100, ge=1, le=1000)) -> JSONBody:
    """OpenLineage events waiting for their parent run (younger than the TTL), oldest first, with both counts."""
    return JSONBody(await run_in_threadpool(_waiting, request, "pending", limit))


@router.get("/api/v1/lineage/unlinked", dependencies=[Depends(require("read"))], response_class=JSONBody)
async def list_unlinked(request: Request, limit: int = Query(100, ge=1, le=1000)) -> JSONBody:
    """OpenLineage events whose parent stayed unknown past the TTL (kept: linked if it still arrives)."""
    return JSONBody(await run_in_threadpool(_waiting, request, "unlinked", limit))
