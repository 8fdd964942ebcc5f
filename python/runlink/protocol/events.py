"""Build and validate protocol v1 events against the one JSON Schema."""

from __future__ import annotations

import codecs
import functools
import json
import os
import socket
from collections.abc import Mapping
from datetime import datetime, timezone
from importlib import resources
from typing import Any

import fastjsonschema

from runlink.ids import random_event_id
from runlink.instants import format_instant

# fastjsonschema's code generator encodes with `unicode_escape`, and the validators compile on first use, often in
# the delivery thread. Looking the codec up there imports it, and in an Airflow 3 task process that import can fail
# while the task thread imports (LookupError: unknown encoding: unicode_escape): the events being batched were lost.
# Looked up once here, in the importing thread, it is cached for every thread.
codecs.lookup("unicode_escape")

PROTOCOL_VERSION = 1


class ProtocolError(ValueError):
    """An event or batch that does not match the schema; says which event and which field."""

    def __init__(self, message: str, index: int | None = None, field: str | None = None):
        super().__init__(message)
        self.index = index
        self.field = field

    def to_dict(self) -> dict[str, Any]:
        return {"message": str(self), "index": self.index, "field": self.field}


@functools.cache
def load_schema() -> dict[str, Any]:
    text = resources.files("runlink.protocol").joinpath("schema/events-v1.json").read_text("utf-8")
    return json.loads(text)


EVENT_TYPES: tuple[str, ...] = tuple(load_schema()["definitions"]["event"]["properties"]["type"]["enum"])
SPARK_EVENT_TYPES: frozenset[str] = frozenset(t for t in EVENT_TYPES if t.startswith("spark_") or t == "sql_query")


def _compile(definition: dict[str, Any]):
    schema = load_schema()
    return fastjsonschema.compile(
        {**definition, "definitions": schema["definitions"], "$schema": schema["$schema"]}
    )


@functools.cache
def _envelope_validator():
    """The event schema less its per-type conditions, which `_payload_validators` apply directly."""
    envelope = {k: v for k, v in load_schema()["definitions"]["event"].items() if k != "allOf"}
    return _compile(envelope)


@functools.cache
def _payload_validators() -> dict[str, Any]:
    """The schema's `if type == X then payload: $ref` rules, compiled once per type."""
    validators = {}
    for rule in load_schema()["definitions"]["event"]["allOf"]:
        const = rule["if"]["properties"]["type"].get("const")
        if const is not None:
            validators[const] = _compile(rule["then"]["properties"]["payload"])
    return validators


def _field_of(exc: fastjsonschema.JsonSchemaValueException) -> str | None:
    path = getattr(exc, "path", None) or []
    parts = [str(p) for p in path if p != "data"]
    return ".".join(parts) or None


def validate_event(event: Any, index: int | None = None) -> None:
    """Raise ProtocolError when `event` does not match the schema."""
    where = f"event {index}" if index is not None else "event"
    try:
        _envelope_validator()(event)
    except fastjsonschema.JsonSchemaValueException as exc:
        field = _field_of(exc)
        raise ProtocolError(f"{where}: {field or 'event'}: {exc.message}", index, field) from None
    type_ = event["type"]
    try:
        _payload_validators()[type_](event["payload"])
    except fastjsonschema.JsonSchemaValueException as exc:
        field = ".".join(["payload", *(str(p) for p in (exc.path or []) if p != "data")])
        message = exc.message.replace("data", "payload", 1)
        raise ProtocolError(f"{where}: {field}: {message}", index, field) from None
    if type_ in SPARK_EVENT_TYPES and not event.get("spark"):
        raise ProtocolError(f'{where}: spark: a {type_} event needs "spark": {{"app_id": ...}}', index, "spark")


def validate_batch(batch: Any, max_events: int = 10000) -> list[dict[str, Any]]:
    """Validate a whole batch; returns its events. Raises on the first bad event."""
    if not isinstance(batch, Mapping) or set(batch) != {"events"}:
        raise ProtocolError('a batch is an object with exactly one key, "events"', None, None)
    events = batch["events"]
    if not isinstance(events, list) or not events:
        raise ProtocolError('"events" must be a non-empty array', None, "events")
    if len(events) > max_events:
        raise ProtocolError(f"a batch holds at most {max_events} events, got {len(events)}", None, "events")
    fast = _batch_validator_rs()
    if fast is not None and fast.is_valid(batch):
        for index, event in enumerate(events):
            if event["type"] in SPARK_EVENT_TYPES and not event.get("spark"):
                validate_event(event, index)
        return events
    # the per-event path names the event and field the same way whichever validator found the fault
    for index, event in enumerate(events):
        validate_event(event, index)
    if fast is not None:
        error = next(iter(fast.iter_errors(batch)))
        path = [str(p) for p in error.instance_path]
        index = int(path[1]) if len(path) > 1 and path[1].isdigit() else None
        field = ".".join(path[2:]) or None
        raise ProtocolError(f"event {index}: {field}: {error.message}", index, field)
    return events


@functools.cache
def _batch_validator_rs() -> Any:
    """jsonschema-rs over the whole schema, where installed (the tracker's `server` extra): about four times
    faster than fastjsonschema, which stays the agents' light validator and gives the error messages."""
    try:
        import jsonschema_rs
    except ImportError:
        return None
    return jsonschema_rs.Draft7Validator(load_schema())


@functools.cache
def _source_base(agent: str) -> tuple[str, str]:
    from runlink import __version__

    return __version__, socket.gethostname()


def now_iso() -> str:
    return format_instant(datetime.now(timezone.utc))


def make_event(
    type_: str,
    payload: Mapping[str, Any],
    *,
    context: Mapping[str, Any] | None = None,
    spark: Mapping[str, Any] | None = None,
    agent: str = "python",
    event_id: str | None = None,
    time: str | None = None,
) -> dict[str, Any]:
    """An envelope around a payload. Cheap: validation happens later, off the caller's thread."""
    version, host = _source_base(agent)
    event: dict[str, Any] = {
        "v": PROTOCOL_VERSION,
        "id": event_id or random_event_id(),
        "type": type_,
        "time": time or now_iso(),
        "source": {"agent": agent, "version": version, "host": host, "pid": os.getpid()},
        "payload": dict(payload),
    }
    if context:
        event["context"] = dict(context)
    if spark:
        event["spark"] = dict(spark)
    return event
