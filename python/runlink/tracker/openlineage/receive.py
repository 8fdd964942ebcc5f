"""Incoming OpenLineage bodies: checked event by event, then translated in one request's transaction.

Why a check before translating: something that is not an OpenLineage event at all is a 422 naming its index;
a Job or Dataset event (no run) is counted as ignored, not refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection

from runlink.instants import parse_instant
from runlink.protocol import ProtocolError
from runlink.tracker.openlineage.facets import parent_facet
from runlink.tracker.openlineage.translator import Translator


def parse_payload(body: Any) -> list[Any]:
    """The OpenLineage HTTP transport posts one event; batch-capable producers post an array."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("events"), list) and "run" not in body:
        return body["events"]
    return [body]


def check_run_event(event: Any, index: int) -> bool:
    """True for a RunEvent to translate, False for other OpenLineage events (Job/DatasetEvent: no run).

    Raises ProtocolError (-> 422) for something that is not an OpenLineage event at all."""
    if not isinstance(event, dict):
        raise ProtocolError(f"event {index}: an OpenLineage event is a JSON object", index, None)
    if "run" not in event:
        if isinstance(event.get("job"), dict) or isinstance(event.get("dataset"), dict):
            return False
        raise ProtocolError(f"event {index}: run: required for a RunEvent", index, "run")
    run = event["run"]
    if not isinstance(run, dict) or not isinstance(run.get("runId"), str) or not 0 < len(run["runId"]) <= 64:
        raise ProtocolError(f"event {index}: run.runId: a string of 1..64 characters is required", index,
                            "run.runId")
    job = event.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("name"), str) or not job["name"]:
        raise ProtocolError(f"event {index}: job.name: required", index, "job.name")
    if not isinstance(event.get("eventTime"), str) or parse_instant(event["eventTime"]) is None:
        raise ProtocolError(f"event {index}: eventTime: an ISO-8601 instant is required", index, "eventTime")
    event_type = event.get("eventType", "OTHER")
    if event_type is not None and not isinstance(event_type, str):
        raise ProtocolError(f"event {index}: eventType: must be a string", index, "eventType")
    return True


def translate_all(conn: Connection, ol_events: Iterable[Any]) -> tuple[list[dict], list[int], Translator]:
    """Protocol events for a request's OpenLineage events, and for each the index of the OL event it came from."""
    translator = Translator(conn)
    out: list[dict] = []
    origin: list[int] = []
    for index, ol in enumerate(ol_events):
        if not check_run_event(ol, index):
            translator.ignored += 1
            continue
        derived = translator.translate(ol)
        out += derived
        origin += [index] * len(derived)
    translator.flush_runs()
    return out, origin, translator


def retry_pending(conn: Connection, rows: Iterable[Any]) -> tuple[list[dict], Translator]:
    """Try again to link waiting events (rows of openlineage_pending: id, waiting_on, raw): their parent may now
    be known to runlink. Returns the protocol events of the ones that linked."""
    translator = Translator(conn)
    out: list[dict] = []
    for waiting_on in sorted({r.waiting_on for r in rows}):
        raw = next(r.raw for r in rows if r.waiting_on == waiting_on)
        link = translator.link(parent_facet(orjson.loads(raw)))
        if link is not None:
            out += translator.resolve_children(waiting_on, link[0])
    translator.flush_runs()
    return out, translator
