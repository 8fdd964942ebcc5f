"""The one way a request body becomes stored events, for both event routes (/api/v1/events, /api/v1/lineage).

decode (gzip within the cap, JSON) -> sanitize (mask secrets, cap lists) -> validate (the protocol schema) ->
prepare (times, contexts, storable values) -> collect (rows, outside the write lock) -> store (one transaction)
-> the after-commit hooks. A body that is not a protocol batch (OpenLineage) brings a `Translation` that turns
it into protocol events inside the write transaction. Errors are exceptions the route maps to HTTP: `Refused`
carries its status, `ProtocolError` is a 422; nothing of a refused batch is stored.
"""

from __future__ import annotations

import time
import zlib
from typing import Any, Protocol

import orjson
from sqlalchemy import Connection

from runlink.protocol import ProtocolError, validate_batch
from runlink.tracker import security
from runlink.tracker.ingest.prepare import Prepared, prepare
from runlink.tracker.ingest.rows import collect
from runlink.tracker.ingest.store import lock_keys, store


class Refused(Exception):
    """A body refused before its events are checked: `status` is what the route answers (400, 413, 422)."""

    def __init__(self, status: int, detail: Any) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class Translation(Protocol):
    """How a body that is not a protocol batch becomes protocol events (one instance per request)."""

    def read(self, parsed: Any, settings: Any) -> int:
        """Check the decoded body (raise Refused or ProtocolError); returns how many events it holds."""

    def derive(self, conn: Connection) -> tuple[list[dict[str, Any]], list[int] | None]:
        """The protocol events, in the write transaction; with, per derived event, the index of its source."""

    def finish(self, conn: Connection) -> dict[str, int]:
        """After the store, same transaction: the translation's own writes and the rest of the answer."""


def decompress(body: bytes, cap: int) -> bytes:
    """A gzip body, refused (413) once it inflates past `cap` bytes: never inflated whole first."""
    decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = decoder.decompress(body, cap + 1)
        if len(out) > cap or decoder.unconsumed_tail:
            raise Refused(413, f"decompressed body over {cap} bytes")
        out += decoder.flush()
    except zlib.error:
        raise Refused(400, "body is not valid gzip") from None
    if not decoder.eof:
        raise Refused(400, "body is not valid gzip (truncated)")
    if len(out) > cap:
        raise Refused(413, f"decompressed body over {cap} bytes")
    return out


def decode(body: bytes, encoding: str, cap: int) -> Any:
    """The body's JSON, after its Content-Encoding (gzip or none)."""
    if encoding == "gzip":
        body = decompress(body, cap)
    elif encoding not in ("", "identity"):
        raise Refused(400, f"unsupported Content-Encoding {encoding!r}")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise Refused(400, f"body is not JSON: {exc}") from None


def check(batch: Any, max_events: int) -> Prepared:
    """Sanitize, validate and prepare a batch: everything that can refuse it, before any write."""
    if isinstance(batch, dict) and isinstance(batch.get("events"), list):
        security.sanitize(batch["events"])  # mask secrets, cap unbounded lists: before validation and storage
    return prepare(validate_batch(batch, max_events=max_events))


def store_derived(conn: Connection, derived: list[dict[str, Any]], origin: list[int] | None,
                  max_events: int) -> tuple[int, int, Prepared | None]:
    """Check and store translated events in the caller's transaction; a bad one names its source event."""
    if not derived:
        return 0, 0, None
    try:
        prepared = check({"events": derived}, max(max_events, len(derived)))
    except ProtocolError as exc:
        where = origin[exc.index] if origin and exc.index is not None and exc.index < len(origin) else None
        raise ProtocolError(f"OpenLineage event {where}: {exc}", where, exc.field) from None
    accepted, duplicates = store(conn, prepared)
    return accepted, duplicates, prepared


def run_hooks(state: Any, prepared: Prepared) -> None:
    """Tell the after-commit listeners (alerts, OpenLineage export) about a stored batch; they never block."""
    for hook in getattr(state, "ingest_hooks", ()):
        hook(prepared)


def ingest(state: Any, body: bytes, encoding: str, translation: Translation | None = None,
           timings: dict[str, float] | None = None) -> dict[str, int]:
    """Decode, check and store one request's body; returns the route's answer (`accepted`, `duplicates`, and
    the translation's own counts). Raises Refused or ProtocolError with nothing stored. `timings["lock"]` gets
    the seconds the write waited for its lock, `timings["write"]` those of the whole write (lock included)."""
    settings = state.settings
    parsed = decode(body, encoding, settings.max_decompressed_bytes)
    extra: dict[str, int] = {}
    if translation is None:
        try:
            prepared: Prepared | None = check(parsed, settings.max_events)
        except ProtocolError:
            if isinstance(parsed, dict) and isinstance(parsed.get("events"), list):
                state.telemetry.events_rejected.inc(len(parsed["events"]))
            raise
        rows = collect(prepared)  # outside the write lock: other workers write meanwhile

        def write(conn: Connection) -> tuple[int, int, float]:
            return (*store(conn, prepared, rows), conn.info.get("lock_wait_s", 0.0))

        # on PostgreSQL, batches of other DAGs are stored at the same time (lock_keys)
        began = time.perf_counter()
        accepted, duplicates, lock_wait = state.db.transact(lock_keys(prepared, rows), write)
        if timings is not None:
            timings["write"] = time.perf_counter() - began
    else:
        received = translation.read(parsed, settings)
        try:
            with state.db.write() as conn:
                derived, origin = translation.derive(conn)
                accepted, duplicates, prepared = store_derived(conn, derived, origin, settings.max_events)
                extra = translation.finish(conn)
                lock_wait = conn.info.get("lock_wait_s", 0.0)
        except ProtocolError:
            state.telemetry.events_rejected.inc(received)
            raise
    if timings is not None:
        timings["lock"] = lock_wait
    if accepted and prepared is not None:
        run_hooks(state, prepared)
    return {"accepted": accepted, "duplicates": duplicates, **extra}
