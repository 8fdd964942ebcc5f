"""Asynchronous, bounded delivery of events to the tracker: the agent must never hurt the job.

`emit()` is an O(1) append to a bounded in-memory queue (full -> the event is dropped and counted); it
never blocks and never raises. One daemon thread completes and validates events, batches them (count,
bytes and time bounds), gzips and POSTs them. What an answer means:

- 2xx: delivered. A 4xx other than 429 (the batch can never be accepted as it is): never retried, moved to the
  spool's quarantine folder with the reason (401/403 too: a fixed token can `runlink spool requeue` it).
- no answer (connection refused, timeout): the tracker is down; the batch is spooled at once, and so is what
  follows until a probe gets through (backoff), so a burst while it is down goes to disk instead of the
  in-memory queue filling behind retries.
- 429: retried with backoff (Retry-After), then spooled.
- 5xx: retried a little, then spooled with its count of failed rounds in the file's name. A round (a send with
  its in-memory retries, or one replay) that ends in 5xx counts against the batch when the tracker took other
  batches since its previous counted round (the first one in a process always counts); the batch is then set
  aside with a backoff (the files behind it replay meanwhile) and, after `QUARANTINE_AFTER` counted rounds over
  all processes, quarantined: one poisoned batch never blocks the spool. 5xx for different batches in a row
  means the tracker itself is failing: treated as down, nothing counted.

Spooled batches (earlier processes' too) are replayed oldest first once the tracker answers, by the sender in
the background and by the exit flush within its budget, so a short process after an outage delivers what
earlier ones spooled. The spool is one folder per tracker URL. `flush(timeout)` waits at most `timeout`:
requests made under a flush get a timeout shorter than what is left of it, and whatever is still in memory when
it runs out is spooled. Counters (sent, dropped, spooled, replayed, quarantined, send errors) are reported as an
`agent_health` event at flush and exit.
"""

from __future__ import annotations

import atexit
import gzip
import json
import logging
import math
import os
import random
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from runlink import config as config_mod
from runlink.config import Config
from runlink.instants import format_instant
from runlink.protocol.events import ProtocolError, load_schema, make_event, validate_event
from runlink.spool import Claim, Spool, spool_key
from runlink.transports import HttpTransport, Outcome, Transport

log = logging.getLogger("runlink")

#: counters reported in agent_health (payload key -> attribute)
COUNTERS = ("sent", "dropped", "spooled", "replayed", "quarantined", "send_errors")
#: counted 5xx rounds (over all processes) after which a batch is quarantined instead of spooled again
QUARANTINE_AFTER = 3
#: how long a timed-out flush waits for the sender to finish making a batch, or writing one it took to the spool
HANDS_WAIT_S = 1.0
#: 5xx answers a live batch gets in memory (one round) before it is spooled (the queue must not wait behind it)
LIVE_5XX_TRIES = 3


class _Marker(threading.Event):
    """Put into the queue by `flush`: set once everything queued before it was sent or spooled."""


class _DrainMarker(_Marker):
    """The exit flush's second marker: set once the spool was replayed, or the flush budget ran out."""


class _InFlight:
    """The batch the sender is working on, so a timed-out flush can spool it (exactly one side does)."""

    __slots__ = ("body", "events", "health", "settled", "_taken", "_lock")

    def __init__(self, body: bytes, events: int, health: int) -> None:
        self.body = body
        self.events = events
        self.health = health
        #: set once the sender is done with it (sent, spooled, quarantined, or left to the flush that took it)
        self.settled = threading.Event()
        self._taken = False
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._taken:
                return False
            self._taken = True
            return True

    @property
    def taken(self) -> bool:
        return self._taken


def _json_safe(value: Any) -> Any:
    """What JSON (and the schema) can carry: NaN/inf become strings, numpy scalars plain numbers."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    item = getattr(value, "item", None)  # numpy / pandas scalars
    if callable(item):
        try:
            return _json_safe(item())
        except Exception:
            pass
    if isinstance(value, datetime):
        return format_instant(value)
    return str(value)


_encode_string = json.encoder.encode_basestring  # type: ignore[attr-defined] # what json.dumps(ensure_ascii=False) uses


def _without_nul(value: Any) -> Any:
    """NUL (U+0000) in strings and keys becomes U+FFFD: the tracker refuses NUL (PostgreSQL cannot store it),
    and one NUL in a log line must not get the whole batch refused."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, Mapping):
        return {_without_nul(str(k)): _without_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_without_nul(v) for v in value]
    return value


def _dumps(event: Mapping[str, Any]) -> bytes:
    try:
        text = json.dumps(event, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError):
        text = json.dumps(_json_safe(event), separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    if "\\u0000" in text:  # rare: a NUL somewhere (or a literal backslash-u0000, which this leaves as it is)
        text = json.dumps(_without_nul(_json_safe(event)), separators=(",", ":"), allow_nan=False,
                          ensure_ascii=False)
    return text.encode("utf-8", "replace")  # a lone surrogate becomes "?" instead of failing the batch


class NoopClient:
    """What `get_client()` returns when tracking is off: accepts everything, does nothing."""

    tracking = False

    def __init__(self, config: Config | None = None) -> None:
        self.config = config

    def __repr__(self) -> str:
        return "NoopClient()"

    def emit(self, event: Mapping[str, Any]) -> bool:
        return False

    def emit_lazy(self, *item: Any) -> bool:
        return False

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True

    def counters(self) -> dict[str, int]:
        return dict.fromkeys(COUNTERS, 0)


class Client:
    """The process's delivery agent: bounded queue + one background sender thread."""

    tracking = True

    def __init__(
        self,
        config: Config,
        transport: Transport | None = None,
        spool: Spool | None = None,
        *,
        backoff_base_s: float = 0.1,
        backoff_max_s: float = 30.0,
        spool_check_interval_s: float = 10.0,
    ) -> None:
        self.config = config
        self.pid = os.getpid()
        self._transport = transport
        self._spool = spool if spool is not None else Spool(config.spool_dir / spool_key(config.url),
                                                              config.spool_max_bytes)
        self.quarantine_after = QUARANTINE_AFTER
        self._contexts_ok: dict[int, tuple[Mapping[str, Any], str]] = {}
        self._source_json = json.dumps(make_event("metric", {})["source"], separators=(",", ":"), ensure_ascii=False)
        self._queue: deque[Any] = deque()
        self._max = max(1, int(config.queue_size))
        self._wake_at = max(1, int(config.batch_size))
        self._backoff_base = backoff_base_s
        self._backoff_max = backoff_max_s
        self._spool_check_interval = spool_check_interval_s

        self.sent = self.dropped = self.spooled = self.replayed = self.quarantined = self.send_errors = 0
        self.invalid = 0
        self._health_sent = 0
        self._health_spooled = 0
        self._last_report: tuple[int, ...] | None = None
        self._count_lock = threading.Lock()
        self._logged: set[str] = set()

        self._wake = threading.Event()
        self._interrupt = threading.Event()  # set while a flush is waiting: cuts backoff waits short
        self._deadlines: list[float] = []
        self._deadline: float | None = None
        self._reserve = 0.0
        self._flush_lock = threading.Lock()
        self._inflight: _InFlight | None = None
        # The sender takes events off the queue and makes batches under `_hands`, and a timed-out flush spools
        # under it: events are always in the queue, in `_ready` (batches made, not sent yet) or in flight, never
        # only in the sender's hands, where a process ending right after the flush (os._exit) would lose them.
        self._hands = threading.Lock()
        self._ready: list[_InFlight] = []
        self._carry: list[Any] = []

        self._down_until = 0.0
        self._down_delay = 0.0
        self._last_5xx: object | None = None  # the batch that got the last 5xx, until any batch gets through
        self._accepted_seq = 0  # batches the tracker took so far (a 5xx round counts only if some passed since)
        self._counted: dict[object, int] = {}  # batch -> _accepted_seq at its last counted 5xx round
        self._deferred: dict[str, float] = {}  # spool file key -> not before (monotonic): set aside after a 5xx
        self._drain_until: float | None = None  # set while the exit flush replays the spool
        self._replay_blocked = False
        self._spool_dirty = True  # check the spool (earlier processes may have left files) at start
        self._next_spool_check = 0.0
        self._closed = False
        self._thread: threading.Thread | None = None
        try:
            self._thread = threading.Thread(target=self._run, name="runlink-sender", daemon=True)
            self._thread.start()
            _register_multiprocessing_exit()
        except RuntimeError as exc:  # e.g. created during interpreter shutdown
            self._thread = None
            self._log_once("thread", "runlink cannot start its sender thread (%s): events will be spooled", exc)

    def __repr__(self) -> str:  # the token never shows
        return f"Client(url={self.config.url!r}, queued={len(self._queue)}, counters={self.counters()})"

    # -- the caller's side: O(1), never blocks, never raises ---------------------------------------

    def emit(self, event: Mapping[str, Any]) -> bool:
        """Queue a complete protocol event. False when it was dropped (queue full)."""
        try:
            queue = self._queue
            if len(queue) >= self._max:
                self._drop_full()
                return False
            queue.append(event)
            if len(queue) == self._wake_at:
                self._wake.set()
            return True
        except Exception:
            return False

    def emit_lazy(
        self,
        type_: str,
        payload: dict[str, Any],
        ts: float,
        context: Mapping[str, Any] | None,
        spark: Mapping[str, Any] | None = None,
    ) -> bool:
        """Queue an event whose envelope (id, time text, source) the sender thread completes: the SDK's path."""
        try:
            queue = self._queue
            if len(queue) >= self._max:
                self._drop_full()
                return False
            queue.append((type_, payload, ts, context, spark))
            if len(queue) == self._wake_at:
                self._wake.set()
            return True
        except Exception:
            return False

    def _drop_full(self) -> None:
        with self._count_lock:
            self.dropped += 1
        self._log_once("full", "runlink queue is full (%d events): dropping events (counted)", self._max)

    def counters(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in COUNTERS}

    def queue_size(self) -> int:
        return sum(1 for item in list(self._queue) if not isinstance(item, _Marker))

    # -- flush and exit ------------------------------------------------------------------------------

    def flush(self, timeout: float | None = None, *, reason: str = "flush") -> bool:
        """Wait at most `timeout` s until everything emitted so far is sent or spooled. True when it was.

        Then the counters go out as an `agent_health` event (when they changed), within the same budget.
        """
        try:
            if self._closed:  # after close (e.g. close() then the atexit flush): no thread to wait for
                self._spool_what_is_left()
                return True
            budget = self.config.flush_timeout_s if timeout is None else max(0.0, float(timeout))
            deadline = time.monotonic() + budget
            with self._flush_lock:
                self._deadlines.append(deadline)
                self._deadline = min(self._deadlines)
                self._reserve = min(0.5, 0.2 * budget)
            try:
                self._interrupt.set()
                done = self._wait_marker(deadline)
                if done and reason == "exit":  # replay what this and earlier processes spooled, within the budget
                    self._wait_marker(deadline, drain=True)
                if done and self._report_health(reason):
                    done = self._wait_marker(deadline)
                if not done:
                    self._report_health(reason)
                    self._spool_what_is_left()
                    self._log_once(
                        "flush-timeout", "runlink flush ran out of its %.1fs budget: the rest was spooled", budget
                    )
                return done
            finally:
                with self._flush_lock:
                    self._deadlines.remove(deadline)
                    self._deadline = min(self._deadlines) if self._deadlines else None
                    if not self._deadlines:
                        self._interrupt.clear()
        except Exception as exc:  # never hurt the job
            self._log_once("flush-error", "runlink flush failed: %s", exc)
            return False

    def _wait_marker(self, deadline: float, drain: bool = False) -> bool:
        marker = _DrainMarker() if drain else _Marker()
        self._queue.append(marker)  # past the bound on purpose: a flush is never dropped
        self._wake.set()
        thread = self._thread
        if thread is None or not thread.is_alive():
            return False
        return marker.wait(max(0.0, deadline - time.monotonic()))

    def close(self, timeout: float | None = None) -> bool:
        """Flush (bounded) and stop the sender thread; used at exit. Closing twice is harmless."""
        if self._closed:
            return self.flush(0)
        done = self.flush(timeout, reason="exit")
        self._closed = True
        self._wake.set()
        return done

    def _report_health(self, reason: str) -> bool:
        """Queue an agent_health event when the counters changed since the last report."""
        snapshot = (self.sent - self._health_sent, self.dropped, self.spooled - self._health_spooled,
                    self.replayed, self.quarantined, self.send_errors)
        if not any(snapshot) or snapshot == self._last_report:
            return False
        self._last_report = snapshot
        from runlink.context import from_env

        payload = {
            "events_sent": self.sent,
            "events_dropped": self.dropped,
            "events_spooled": self.spooled,
            "events_replayed": self.replayed,
            "events_quarantined": self.quarantined,
            "queue_size": self.queue_size(),
            "send_errors": self.send_errors,
            "reason": reason,
        }
        self._queue.append(make_event("agent_health", payload, context=from_env() or None))
        return True

    def _spool_what_is_left(self) -> None:
        """The flush budget ran out: put the batch in flight, the batches made and the queue on disk (caller's
        thread). It waits for the sender to finish making a batch (milliseconds), never for a send."""
        holding = self._hands.acquire(timeout=HANDS_WAIT_S)  # only a bug (or a fork) holds it longer: go on
        try:
            made = list(self._ready)  # before the batch in flight: `_deliver` sets that first, then leaves `_ready`
            for batch in [*made, self._inflight]:
                if batch is None:
                    continue
                if batch.take():
                    self._to_spool(batch.body, batch.events, batch.health)
                else:  # the sender took it (after its send ended): sent, or being written to the spool
                    batch.settled.wait(HANDS_WAIT_S)
            items = []
            for item in self._taken():
                if isinstance(item, _Marker):
                    item.set()
                else:
                    items.append(item)
            for rest in self._build_batches(items):
                self._to_spool(*rest)
        finally:
            if holding:
                self._hands.release()

    def _taken(self) -> Iterator[Any]:
        """Items taken off the queue, oldest first, until it is empty (producers may append meanwhile)."""
        while True:
            try:
                yield self._queue.popleft()
            except IndexError:
                return

    # -- the sender thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        if self._transport is None:
            try:
                with _import_guard:  # a fork in another thread waits for these imports (see _before_fork)
                    self._transport = HttpTransport(self.config.events_url, self.config.token)
            except Exception as exc:
                self._log_once("transport", "runlink cannot create its HTTP transport: %s", exc)
                return
        self._spool.release_orphans()
        while not self._closed:
            try:
                if self._queue:
                    self._send_queued()
                # one spool file per round, so a steady stream of live events cannot starve the replay
                if self._replay_one() or self._queue:
                    continue
                self._wake.wait(self.config.batch_interval_s)
                self._wake.clear()
            except Exception as exc:  # the loop must survive anything
                self._log_once("loop", "runlink sender error (continuing): %r", exc)

    def _send_queued(self) -> None:
        """Drain the queue in batches until it is empty or only a flush marker remained."""
        for batch in list(self._ready):  # made before a sender error cut the last round short: they go first
            self._deliver(batch)
        while True:
            with self._hands:
                items, marker = self._take_batch()
                ready = [_InFlight(*made) for made in self._build_batches(items)]
                self._ready.extend(ready)
            for batch in ready:
                self._deliver(batch)
            if marker is not None:
                if isinstance(marker, _DrainMarker):
                    self._drain_spool()
                marker.set()
            elif not items:
                return

    def _take_batch(self) -> tuple[list[Any], _Marker | None]:
        """Events off the queue up to a batch's count, or up to the first flush marker (returned apart)."""
        items: list[Any] = []
        limit = max(1, int(self.config.batch_size))
        for item in self._taken():
            if isinstance(item, _Marker):
                return items, item
            items.append(item)
            if len(items) >= limit:
                break
        return items, None

    def _complete(self, item: Any) -> dict[str, Any] | bytes | None:
        """A queued item as a valid protocol event, or None (dropped, counted, logged once)."""
        try:
            if isinstance(item, tuple):
                type_, payload, ts, context, spark = item
                if type_ == "metric" and spark is None and len(payload) == 2:
                    event = self._metric_event(payload, ts, context)
                    if event is not None:
                        return event
                if type_ == "metric":
                    payload = {**payload, "key": str(payload["key"]), "value": _json_safe(payload.get("value"))}
                moment = datetime.fromtimestamp(ts, timezone.utc)
                event = make_event(type_, payload, context=context, spark=spark, time=format_instant(moment))
            else:
                event = dict(item)
            validate_event(event)
            return event
        except (ProtocolError, KeyError, TypeError, ValueError) as exc:
            with self._count_lock:
                self.invalid += 1
                self.dropped += 1
            self._log_once("invalid", "runlink dropped an invalid event (not sent; counted): %s", exc)
            return None

    def _metric_event(self, payload: Mapping[str, Any], ts: float, context: Mapping[str, Any] | None
                      ) -> bytes | None:
        """The SDK's metric as a serialized event, without a schema pass or a json.dumps of the whole event (most
        of the sender's time per metric: a burst while the tracker is down must reach the spool as fast as it is
        logged). Its shape is built here, so checking the key and value bounds and the context (once per context
        object) is the schema's check. None: take the general path (validated) instead."""
        key = payload.get("key")
        value = payload.get("value")
        if type(key) is not str or not 0 < len(key) <= 1000 or "\x00" in key:  # noqa: E721 - exact str
            return None
        kind = type(value)
        if kind is float:
            if not math.isfinite(value):
                return None
            text = float.__repr__(value)
        elif kind is str:
            if len(value) > 65536 or "\x00" in value:
                return None
            text = _encode_string(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = int.__repr__(value)
        elif value is None:
            text = "null"
        else:
            return None
        context_json = ""
        if context:
            context_json = self._context_json(context)
            if context_json is None:
                return None
        seconds = int(ts)
        instant = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int((ts - seconds) * 1e6):06d}Z"
        return (f'{{"v":1,"id":"{uuid.uuid4()}","type":"metric","time":"{instant}","source":{self._source_json},'
                f'"payload":{{"key":{_encode_string(key)},"value":{text}}}{context_json}}}').encode("utf-8", "replace")

    def _context_json(self, context: Mapping[str, Any]) -> str | None:
        """`,"context":{...}` for a context object that passed the schema (once per object: the SDK reuses one)."""
        known = self._contexts_ok
        entry = known.get(id(context))
        if entry is not None and entry[0] is context:
            return entry[1]
        if not self._context_checked(context):
            return None
        text = ',"context":' + json.dumps(dict(context), separators=(",", ":"), ensure_ascii=False)
        if "\\u0000" in text:
            return None
        if len(known) > 64:
            known.clear()
        known[id(context)] = (context, text)  # the reference keeps the id from being reused
        return text

    @staticmethod
    def _context_checked(context: Mapping[str, Any]) -> bool:
        """The schema's context rules (known keys, types, lengths), read from the schema itself: compiling the
        schema's validators costs a process about a second of CPU, which a short process should not pay."""
        rules = load_schema()["definitions"]["context"]["properties"]
        for key, value in context.items():
            rule = rules.get(key)
            if rule is None:
                return False
            if value is None:
                continue
            kinds = rule["type"]
            if isinstance(value, str):
                if "string" not in kinds or len(value) > rule.get("maxLength", 1 << 30):
                    return False
            elif type(value) is not int or "integer" not in kinds:  # noqa: E721 - bool is not an integer here
                return False
        return True

    def _build_batches(self, items: Iterable[Any]) -> list[tuple[bytes, int, int]]:
        """Validate, serialize and cut into gzip bodies bounded by count and bytes."""
        limit_count = max(1, int(self.config.batch_size))
        limit_bytes = max(1024, int(self.config.batch_bytes))
        overhead = len(b'{"events":[]}')
        batches: list[tuple[bytes, int, int]] = []
        parts: list[bytes] = []
        size = overhead
        health = 0
        for item in items:
            event = self._complete(item)
            if event is None:
                continue
            if isinstance(event, bytes):  # an SDK metric, serialized by _metric_event
                data, is_health = event, False
            else:
                data, is_health = _dumps(event), event.get("type") == "agent_health"
            if len(data) + overhead > limit_bytes:
                with self._count_lock:
                    self.dropped += 1
                self._log_once(
                    "too-big", "runlink dropped an event of %d bytes (over the %d-byte batch bound)",
                    len(data), limit_bytes,
                )
                continue
            if parts and (len(parts) >= limit_count or size + len(data) + 1 > limit_bytes):
                batches.append((self._body(parts), len(parts), health))
                parts, size, health = [], overhead, 0
            parts.append(data)
            health += is_health
            size += len(data) + 1
        if parts:
            batches.append((self._body(parts), len(parts), health))
        return batches

    @staticmethod
    def _body(parts: list[bytes]) -> bytes:
        return gzip.compress(b'{"events":[' + b",".join(parts) + b"]}", compresslevel=5)

    def _request_timeout(self) -> float | None:
        """Per-request timeout: never longer than what is left of a pending flush (None: no time left)."""
        timeout = float(self.config.request_timeout_s)
        deadline = self._deadline
        if deadline is not None:
            left = deadline - time.monotonic() - self._reserve
            if left < 0.05:
                return None
            timeout = min(timeout, left)
        return timeout

    def _deliver(self, inflight: _InFlight) -> None:
        """Send one batch (made by `_send_queued`, in `_ready`), or spool it (tracker down, flush budget short) or
        quarantine it (refused, poisoned); a timed-out flush may have spooled it first."""
        self._inflight = inflight  # in flight before it leaves `_ready`: a flush always sees it somewhere
        self._ready.remove(inflight)
        body, count, health = inflight.body, inflight.events, inflight.health
        try:
            if inflight.taken:
                return
            if time.monotonic() < self._down_until:
                if inflight.take():
                    self._to_spool(body, count, health)
                return
            probing = self._down_delay > 0  # the tracker was down: one try, no retries
            attempt = fivexx = rounds = 0
            while True:
                timeout = self._request_timeout()
                if timeout is None:
                    if inflight.take():
                        self._to_spool(body, count, health, rounds, inflight)
                    return
                result = self._transport.send(body, timeout)  # type: ignore[union-attr]
                if result.outcome is Outcome.OK:
                    if inflight.take():
                        with self._count_lock:
                            self.sent += count
                            self._health_sent += health
                    self._mark_up()
                    return
                with self._count_lock:
                    self.send_errors += 1
                if result.outcome is Outcome.REJECTED:
                    if inflight.take():
                        self._to_quarantine(None, body, count, result.status, result.message, rounds)
                    return
                if result.status is None:  # unreachable: spool now, do not hold the queue with retries
                    self._mark_down(result.message or "no answer")
                    if inflight.take():
                        self._to_spool(body, count, health, rounds)
                    return
                attempt += 1
                if result.status != 429:
                    counted = self._count_5xx(inflight, probing)
                    if counted is None:  # several batches fail in a row: the tracker is failing, not this batch
                        self._mark_down(result.message or f"HTTP {result.status}")
                        if inflight.take():
                            self._to_spool(body, count, health, rounds)
                        return
                    rounds += counted
                    fivexx += 1
                    if rounds >= self.quarantine_after:
                        if inflight.take():
                            self._to_quarantine(None, body, count, result.status, result.message, rounds)
                        return
                    if fivexx >= LIVE_5XX_TRIES or self._deadline is not None:
                        if inflight.take():
                            self._to_spool(body, count, health, rounds, inflight)
                        return
                elif probing or attempt > self.config.max_retries or self._deadline is not None:
                    self._mark_down(result.message or "HTTP 429")
                    if inflight.take():
                        self._to_spool(body, count, health, rounds)
                    return
                delay = min(self._backoff_max, self._backoff_base * (2 ** (attempt - 1)))
                delay *= random.uniform(0.5, 1.5)
                if result.retry_after_s is not None:
                    delay = max(delay, min(result.retry_after_s, self._backoff_max))
                self._interrupt.wait(delay)  # a flush cuts the wait short (then we spool)
        finally:
            inflight.settled.set()  # before it leaves `_inflight`: a flush that finds it gone finds it settled
            self._inflight = None
            self._counted.pop(inflight, None)  # the batch left memory: its bookkeeping (and body) must too
            if self._last_5xx is inflight:
                self._last_5xx = "a live batch"  # still "another batch got the last 5xx", without its body

    def _count_5xx(self, batch: object, probing: bool) -> bool | None:
        """Whether a 5xx counts against this batch (one more failed round). None: the tracker is failing (it is
        marked down, or the previous 5xx was another batch's with nothing accepted in between). False: this
        batch's previous counted round was after the last accepted batch (its retries are one round)."""
        if probing or (self._last_5xx is not None and self._last_5xx != batch):
            return None
        self._last_5xx = batch
        if self._counted.get(batch) == self._accepted_seq:
            return False
        self._counted[batch] = self._accepted_seq
        return True

    def _mark_up(self) -> None:
        self._last_5xx = None
        self._accepted_seq += 1
        if self._down_delay:
            log.info("runlink: the tracker at %s answers again", self.config.url)
            self._logged.discard("down")
        self._down_delay = 0.0
        self._down_until = 0.0

    def _mark_down(self, why: str) -> None:
        self._down_delay = min(self._backoff_max, 1.0 if self._down_delay == 0 else self._down_delay * 2)
        self._down_until = time.monotonic() + self._down_delay * random.uniform(0.8, 1.2)
        self._log_once("down", "runlink: the tracker at %s is unreachable (%s): spooling events", self.config.url,
                       _mask(why, self.config.token))

    def _log_rejection(self, status: int | None, message: str, count: int) -> None:
        hint = " (check RUNLINK_TOKEN / $RUNLINK_HOME/token)" if status in (401, 403) else ""
        self._log_once(
            f"reject-{status}",
            "runlink: the tracker rejected %d events with HTTP %s%s: %s (not retried; quarantined: "
            "see `runlink spool quarantine`)",
            count, status, hint, _mask(message, self.config.token),
        )

    def _to_quarantine(self, claim: Claim | None, body: bytes, count: int, status: int | None, message: str,
                       fivexx: int) -> None:
        """Set a batch aside with why: never retried on its own, shown by `runlink spool quarantine`."""
        reason = {"status": status, "message": _mask(message, self.config.token)[:2000], "attempts": fivexx,
                  "tracker": self.config.url}
        stored = self._spool.quarantine(claim, reason) if claim is not None else \
            self._spool.quarantine_body(body, count, reason)
        with self._count_lock:
            if stored:
                self.quarantined += count
            else:
                self.dropped += count
        if status is not None and 400 <= status < 500:
            self._log_rejection(status, message, count)
        else:
            self._log_once("quarantine", "runlink: a batch of %d events got %d server errors (last: HTTP %s: %s): "
                           "quarantined, see `runlink spool quarantine`", count, fivexx, status,
                           _mask(message, self.config.token))

    def _to_spool(self, body: bytes, count: int, health: int = 0, attempts: int = 0,
                  failed: _InFlight | None = None) -> None:
        """Write a batch to the spool. `failed`: it ends a 5xx round; its file inherits the round's bookkeeping
        and is set aside for a while (the exit drain does not hit it again at once)."""
        written = self._spool.write(body, count, attempts)
        if failed is not None:
            seq = self._counted.pop(failed, None)
            key = self._spool.last_key if written else None
            if key is not None:
                if seq is not None:
                    self._counted[key] = seq
                if self._last_5xx is failed:
                    self._last_5xx = key
                self._deferred[key] = time.monotonic() + min(self._backoff_max, 0.5 * 2 ** max(1, attempts))
        if written:
            with self._count_lock:
                self.spooled += count
                self._health_spooled += health
            self._spool_dirty = True
        else:
            with self._count_lock:
                self.dropped += count

    def _replay_one(self) -> bool:
        """Replay the oldest spool file when the tracker is up and nothing live waits. True if one was handled
        (sent, set aside or quarantined) and the next may follow."""
        now = time.monotonic()
        draining = self._drain_until is not None
        if self._replay_blocked or (self._deadline is not None and not draining) or now < self._down_until:
            return False
        if not draining and not self._spool_dirty and now < self._next_spool_check:
            return False
        timeout = float(self.config.request_timeout_s)
        if draining:
            timeout = min(timeout, self._drain_until - now)  # type: ignore[operator]
            if timeout < 0.05:
                return False
        deferred = self._deferred
        if deferred:
            for key in [k for k, until in deferred.items() if until <= now]:
                del deferred[key]
        claim = self._spool.claim_oldest(skip=set(deferred))
        if claim is None and self._spool.release_orphans():
            # a process that died mid-replay left its claim (a task process ends with os._exit, maybe just after
            # its sender claimed the batch its own timed-out flush had spooled): a long-lived process (the
            # scheduler) gives it back on its next spool check instead of leaving it to the next process start
            claim = self._spool.claim_oldest(skip=set(deferred))
        if claim is None:
            self._spool_dirty = False
            self._next_spool_check = now + (min(deferred.values()) - now if deferred else self._spool_check_interval)
            return False
        try:
            body = claim.read()
        except OSError:
            self._spool.release(claim)
            return False
        probing = self._down_delay > 0
        result = self._transport.send(body, timeout)  # type: ignore[union-attr]
        if result.outcome is Outcome.OK:
            self._spool.done(claim)
            self._counted.pop(claim.key, None)
            with self._count_lock:
                self.replayed += claim.events
            self._mark_up()
            return True
        with self._count_lock:
            self.send_errors += 1
        if result.outcome is Outcome.RETRY:
            counted = None if result.status is None or result.status == 429 else self._count_5xx(claim.key, probing)
            if counted is None:
                self._spool.release(claim)  # the tracker is down or failing: not this batch's fault
                self._mark_down(result.message or f"HTTP {result.status}")
                return False
            attempts = claim.attempts + counted
            if attempts >= self.quarantine_after:
                self._counted.pop(claim.key, None)
                self._to_quarantine(claim, b"", claim.events, result.status, result.message, attempts)
                return True
            self._spool.release(claim, attempts)
            # set aside for a while: the files behind it replay meanwhile, so it never blocks the spool
            self._deferred[claim.key] = now + min(self._backoff_max, 0.5 * 2 ** attempts)
            return True
        if result.status in (401, 403):
            self._spool.release(claim)  # a process with a valid token will replay it
            self._replay_blocked = True
            self._log_rejection(result.status, result.message, claim.events)
            return False
        self._to_quarantine(claim, b"", claim.events, result.status, result.message, claim.attempts)
        return True

    def _drain_spool(self) -> None:
        """The exit flush: replay spool files until none is left or the flush budget (less its reserve) is."""
        deadline = self._deadline
        if deadline is None:
            return
        self._drain_until = deadline - self._reserve
        self._spool_dirty = True
        try:
            while self._replay_one():
                pass
        finally:
            self._drain_until = None

    def _log_once(self, key: str, message: str, *args: Any) -> None:
        if key in self._logged:
            return
        self._logged.add(key)
        try:
            log.warning(message, *args)
        except Exception:
            pass

    def wait_idle(self, timeout: float) -> bool:
        """True once the queue is empty and nothing is in flight (tests and tools poll on this)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._queue and self._inflight is None and not self._ready:
                return True
            self._wake.wait(0.01)
        return False


def _mask(text: str, token: str | None) -> str:
    """Hide the token should a server echo it (tokens shorter than 4 characters would mask everything)."""
    if token and len(token) >= 4 and token in text:
        text = text.replace(token, "***")
    return text


# -- the process-wide client ---------------------------------------------------------------------

_client: Client | NoopClient | None = None
_client_lock = threading.Lock()


def get_client() -> Client | NoopClient:
    """The process-wide client, created from `config.load()` on first use (a no-op one when tracking is off)."""
    global _client
    client = _client
    if client is not None:
        return client
    with _client_lock:
        if _client is None:
            _client = _create()
        return _client


def _create() -> Client | NoopClient:
    try:
        cfg = config_mod.load()
    except Exception as exc:  # a bad setting disables tracking, it never fails the job
        log.warning("runlink: bad configuration (%s): tracking is off for this process", exc)
        return NoopClient()
    if not cfg.tracking:
        return NoopClient(cfg)
    try:
        return Client(cfg)
    except Exception as exc:
        log.warning("runlink: cannot start the client (%s): tracking is off for this process", exc)
        return NoopClient(cfg)


def set_client(client: Client | NoopClient | None) -> Client | NoopClient | None:
    """Replace the process-wide client (tests, tools); returns the previous one. None: next use re-creates."""
    global _client
    with _client_lock:
        previous, _client = _client, client
    return previous


#: held by the sender thread while it imports its transport's modules (requests, urllib3...). A fork in another
#: thread waits for it: a child inherits a module's import lock as held, by a thread the child does not have, and
#: its first import of that module then waits forever (the Airflow scheduler's LocalExecutor workers, forked while
#: the scheduler's sender thread imported requests, hung on their own `import requests`).
_import_guard = threading.Lock()
_guard_taken = False
#: a fork waits at most this long for the sender's imports, then goes ahead (never a hang of its own)
FORK_WAIT_S = 30.0


def _before_fork() -> None:
    global _guard_taken
    _guard_taken = _import_guard.acquire(timeout=FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    global _guard_taken
    if _guard_taken:
        _guard_taken = False
        _import_guard.release()


def _after_fork_in_child() -> None:
    # The parent's queue and thread do not belong to the child: it starts with a fresh client on first use.
    global _client, _client_lock, _import_guard, _guard_taken
    _client = None
    _client_lock = threading.Lock()
    _import_guard = threading.Lock()
    _guard_taken = False


def _register_multiprocessing_exit() -> None:
    """multiprocessing children leave with os._exit (no atexit): flush through its finalizers instead."""
    mp_util = sys.modules.get("multiprocessing.util")
    if mp_util is None:
        return
    try:
        mp_util.Finalize(None, _flush_at_exit, exitpriority=100)
    except Exception:
        pass


def _flush_at_exit() -> None:
    client = _client
    if isinstance(client, Client) and client.pid == os.getpid():
        client.close(client.config.flush_timeout_s)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_before_fork, after_in_parent=_after_fork_in_parent,
                        after_in_child=_after_fork_in_child)
atexit.register(_flush_at_exit)
