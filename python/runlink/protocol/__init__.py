"""The wire protocol, defined once in `schema/events-v1.json` and checked on both sides."""

from runlink.protocol.events import (
    EVENT_TYPES,
    PROTOCOL_VERSION,
    SPARK_EVENT_TYPES,
    ProtocolError,
    load_schema,
    make_event,
    validate_batch,
    validate_event,
)

__all__ = [
    "EVENT_TYPES",
    "PROTOCOL_VERSION",
    "SPARK_EVENT_TYPES",
    "ProtocolError",
    "load_schema",
    "make_event",
    "validate_batch",
    "validate_event",
]
