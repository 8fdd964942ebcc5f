"""A validated batch -> plain values: everything that can fail on bad input, before any write.

Times and contexts are normalized here (and `storable` checks what a column cannot hold), so a rejected batch
stores nothing. The caches are per process: producers repeat the same contexts and spellings batch after batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

from runlink import ids
from runlink.context import ContextError, NormalizedContext, normalize, stored_instant_text
from runlink.instants import now_instant
from runlink.protocol import ProtocolError
from runlink.tracker.ingest import storable


@functools.lru_cache(maxsize=65536)
def _normalize_cached(items: tuple) -> tuple[NormalizedContext | None, str | None]:
    """(context, its id) for a raw context's items in the producer's key order (one producer always spells
    its context the same way, so the unsorted items are a good cache key); None when there is no dag_id."""
    ctx = normalize({k: v for k, v in items if v is not None})
    if ctx.dag_id is None:
        return None, None
    return ctx, context_id(ctx)


@functools.lru_cache(maxsize=65536)
def context_id(ctx: NormalizedContext) -> str:
    return ids.context_id(ctx)


@functools.lru_cache(maxsize=65536)
def spark_app_pk(app_id: str, attempt_id: str | None) -> str:
    return ids.spark_app_id(app_id, attempt_id)


def synthetic_context(app_name: str | None, app_id: str) -> NormalizedContext:
    """The run-of-its-own context of a Spark application without Airflow context."""
    return normalize({"dag_id": f"spark:{app_name or app_id}", "dag_run_id": app_id, "task_id": "spark"})


@functools.lru_cache(maxsize=65536)
def context_rank(ctx: NormalizedContext, synthetic: bool) -> str:
    """Which context a Spark app belongs to when its events disagree: Airflow beats synthetic, more precise
    beats less; ties by context id. Text, compared like an upsert stamp."""
    flags = (
        not synthetic,
        ctx.dag_run_id is not None or ctx.logical_date is not None,
        ctx.task_id is not None,
        ctx.try_number is not None,
    )
    return "".join("1" if f else "0" for f in flags) + "|" + context_id(ctx)


def id_hash(event_id: str) -> int:
    """The signed 64-bit key events are looked up by (see models.events)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True)


@dataclass
class Prepared:
    """A batch checked and turned into plain values, ready to be written."""

    events: list[dict[str, Any]]
    times: list[str]
    contexts: list[NormalizedContext | None]
    received_at: str
    ids: list[str] = field(default_factory=list)
    context_pks: list[str | None] = field(default_factory=list)  # ids of `contexts`, computed once
    first: dict[str, int] = field(default_factory=dict)  # event id -> index of its first occurrence
    hashes: dict[str, int] = field(default_factory=dict)  # event id -> id_hash
    #: per event, (context, id) of its work_context (the task whose work this is on a shared Spark application)
    work: list[tuple[NormalizedContext, str] | None] = field(default_factory=list)
    #: read in the batch's write transaction (None before it), for the after-commit hooks, which then need no read
    #: of their own: whether OpenLineage events waited for their parent run, whether an alert rule was enabled.
    #: No OpenLineage write or rule edit overlaps that transaction (they hold the exclusive write lock).
    lineage_waiting: bool | None = None
    alert_rules_enabled: bool | None = None


_PAYLOAD_INSTANTS = ("start_date", "end_date", "data_interval_start", "data_interval_end", "start_time", "end_time",
                     "submission_time", "completion_time", "next_run_date")


@functools.cache
def _instant_fields() -> dict[str, tuple[str, ...]]:
    """Per event type, the payload fields that hold instants (from the schema: payloads are closed objects,
    so a type only ever carries the instant fields it declares; an open payload gets them all)."""
    from runlink.protocol import load_schema

    schema = load_schema()
    out: dict[str, tuple[str, ...]] = {}
    for rule in schema["definitions"]["event"]["allOf"]:
        type_ = rule["if"]["properties"]["type"].get("const")
        body = rule["then"].get("properties", {}).get("payload")
        if type_ is None or body is None:
            continue
        if "$ref" in body:
            body = schema["definitions"][body["$ref"].rsplit("/", 1)[1]]
        if body.get("additionalProperties") is False:
            out[type_] = tuple(n for n in _PAYLOAD_INSTANTS if n in body.get("properties", {}))
        else:
            out[type_] = _PAYLOAD_INSTANTS
    return out


_OUT_OF_RANGE = "an instant outside years 1-9999 once converted to UTC"


def prepare(batch_events: Sequence[dict[str, Any]]) -> Prepared:
    """Normalize times and contexts; raise ProtocolError (-> 422) naming the event and field."""
    times: list[str] = []
    ctxs: list[NormalizedContext | None] = []
    ctx_pks: list[str | None] = []
    fields_of = _instant_fields()
    instant_of = stored_instant_text
    first: dict[str, int] = {}
    hashes: dict[str, int] = {}
    work: list[tuple[NormalizedContext, str] | None] = []
    for index, event in enumerate(batch_events):
        event_id = event["id"]
        if event_id not in first:
            first[event_id] = index
            hashes[event_id] = id_hash(event_id)
        storable.check_event(event, index)  # values the schema lets through but a column cannot hold
        try:
            times.append(instant_of(str(event["time"])))
        except ContextError:
            raise ProtocolError(f"event {index}: time: not an ISO-8601 instant", index, "time") from None
        except OverflowError:  # a valid spelling outside years 1-9999 once in UTC
            raise ProtocolError(f"event {index}: time: {_OUT_OF_RANGE}", index, "time") from None
        names = fields_of.get(event["type"], _PAYLOAD_INSTANTS)
        if names:
            payload = event["payload"]
            for name in names:
                value = payload.get(name)
                if value is not None:
                    try:
                        instant_of(str(value))
                    except (ContextError, OverflowError) as exc:
                        field_name = f"payload.{name}"
                        why = _OUT_OF_RANGE if isinstance(exc, OverflowError) else "not an ISO-8601 instant"
                        raise ProtocolError(f"event {index}: {field_name}: {why}", index, field_name) from None
        ctx, ctx_pk = _context(event.get("context"), index, "context")
        ctxs.append(ctx)
        ctx_pks.append(ctx_pk)
        work_ctx, work_pk = _context(event.get("work_context"), index, "work_context")
        work.append(None if work_pk is None else (work_ctx, work_pk))
    return Prepared(events=list(batch_events), times=times, contexts=ctxs, received_at=now_instant(),
                    context_pks=ctx_pks, first=first, hashes=hashes, work=work)


def _context(raw: dict[str, Any] | None, index: int, where: str) -> tuple[NormalizedContext | None, str | None]:
    """(normalized context, id) of an event's raw `context` or `work_context`; (None, None) without a dag_id."""
    if not raw:
        return None, None
    try:
        ctx, ctx_pk = _normalize_cached(tuple(raw.items()))
    except (ContextError, OverflowError) as exc:
        field_name = f"{where}.execution_date" if raw.get("execution_date") else f"{where}.logical_date"
        why = _OUT_OF_RANGE if isinstance(exc, OverflowError) else exc
        raise ProtocolError(f"event {index}: {field_name}: {why}", index, field_name) from None
    if ctx is not None:
        storable.check_context(ctx.try_number, ctx.map_index, index)
    return ctx, ctx_pk
