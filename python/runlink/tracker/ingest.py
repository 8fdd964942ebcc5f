"""A validated batch -> rows: dedupe by event id, dispatch per type, bulk upserts, relink when needed.

`prepare()` does everything that can fail on bad input (time and context spellings) before any
write, so a rejected batch stores nothing; `collect()` turns it into rows without touching the
database (so several worker processes do that part in parallel, outside the write lock); `store()`
writes it in one transaction. The batch itself is kept as one zstd-compressed blob (`event_batches`):
the audit copy of every event, at a fraction of the bytes a row per raw event wrote.
"""

from __future__ import annotations

import functools
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson
import zstandard
from sqlalchemy import Connection

from runlink import ids
from runlink.context import ContextError, NormalizedContext, normalize, parse_logical_date
from runlink.instants import now_instant
from runlink.protocol import ProtocolError
from runlink.tracker import relink, storable
from runlink.tracker.merge import stamp as make_stamp
from runlink.tracker.models import (
    STAGE_METRICS,
    agent_health,
    contexts,
    dags,
    dataset_ops,
    datasets,
    event_batches,
    events,
    instances,
    log_chunks,
    metrics,
    spark_apps,
    spark_executors,
    spark_jobs,
    spark_stages,
    sql_queries,
    state_events,
)
from runlink.tracker.sqlutil import insert_ignore, insert_rows, run, select_in, upsert_lww

_CTX_KEYS = ("dag_id", "execution_date", "logical_date", "dag_run_id", "task_id", "try_number", "map_index", "uid")


@functools.lru_cache(maxsize=65536)
def _normalize_cached(items: tuple) -> tuple[NormalizedContext | None, str | None]:
    """(context, its id) for a raw context's items in the producer's key order (one producer always spells
    its context the same way, so the unsorted items are a good cache key); None when there is no dag_id."""
    ctx = normalize({k: v for k, v in items if v is not None})
    if ctx.dag_id is None:
        return None, None
    return ctx, _context_id(ctx)


@functools.lru_cache(maxsize=65536)
def _context_id(ctx: NormalizedContext) -> str:
    return ids.context_id(ctx)


@functools.lru_cache(maxsize=65536)
def spark_app_pk(app_id: str, attempt_id: str | None) -> str:
    return ids.spark_app_id(app_id, attempt_id)


@functools.lru_cache(maxsize=65536)
def _instant_cached(text: str) -> str:
    instant, day = parse_logical_date(text)
    if instant is None:
        if day is None:
            raise ContextError("empty")
        return day + "T00:00:00.000000Z"
    return instant


def instant(value: Any) -> str | None:
    """Any ISO-8601 spelling -> the stored spelling; None for null. Raises ContextError."""
    if value is None:
        return None
    return _instant_cached(str(value))


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
    return "".join("1" if f else "0" for f in flags) + "|" + _context_id(ctx)


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
    instant_of = _instant_cached
    first: dict[str, int] = {}
    hashes: dict[str, int] = {}
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
        raw = event.get("context")
        ctx = ctx_pk = None
        if raw:
            try:
                ctx, ctx_pk = _normalize_cached(tuple(raw.items()))
            except (ContextError, OverflowError) as exc:
                field_name = "context.execution_date" if raw.get("execution_date") else "context.logical_date"
                why = _OUT_OF_RANGE if isinstance(exc, OverflowError) else exc
                raise ProtocolError(f"event {index}: {field_name}: {why}", index, field_name) from None
            if ctx is not None:
                storable.check_context(ctx.try_number, ctx.map_index, index)
        ctxs.append(ctx)
        ctx_pks.append(ctx_pk)
    return Prepared(events=list(batch_events), times=times, contexts=ctxs, received_at=now_instant(),
                    context_pks=ctx_pks, first=first, hashes=hashes)


def id_hash(event_id: str) -> int:
    """The signed 64-bit key events are looked up by (see models.events)."""
    return int.from_bytes(blake2b(event_id.encode(), digest_size=8).digest(), "big", signed=True)


def _known(conn: Connection, prepared: Prepared) -> set[str]:
    """The ids of the batch already stored. A hash match is only a candidate: stored ids are compared in full."""
    hashes = prepared.hashes
    rows = select_in(conn, "SELECT id FROM events WHERE id_hash IN ({})", list(set(hashes.values())))
    return {row[0] for row in rows if row[0] in hashes}


def _dataset_identity(ds: dict[str, Any]) -> str:
    for key in ("uri", "path", "table"):
        if ds.get(key):
            return f"{key}:{ds[key]}"
    return f"name:{ds.get('name') or 'unknown'}"


def _dataset_pk(identity: str) -> str:
    return str(uuid.uuid5(ids.NAMESPACE, "dataset:" + identity))


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


class _Rows:
    """Rows collected per table while walking a batch."""

    def __init__(self) -> None:
        self.events: list[dict] = []
        self.state_events: list[dict] = []
        self.contexts: dict[str, tuple[NormalizedContext, bool]] = {}
        self.instances: set[str] = set()
        self.dags: list[dict] = []
        self.apps: dict[str, dict] = {}
        self.app_contexts: dict[str, tuple[str, str]] = {}  # app pk -> (best context rank, context id)
        self.app_starts: list[dict] = []
        self.app_ends: list[dict] = []
        self.job_starts: list[dict] = []
        self.job_ends: list[dict] = []
        self.stages: list[dict] = []
        self.exec_added: list[dict] = []
        self.exec_removed: list[dict] = []
        self.queries: list[dict] = []
        self.datasets: dict[str, dict] = {}
        self.dataset_ops: list[dict] = []
        self.metrics: list[dict] = []
        self.logs: list[dict] = []
        self.health: list[dict] = []
        self.touched_contexts: set[str] = set()
        self.touched_apps: set[str] = set()
        self.batch: tuple[str, str, bytes] | None = None  # (id, received_at, zstd body) of event_batches
        self.keep: list[int] = []


_APP_START_COLS = ("name", "spark_version", "scala_version", "master", "deploy_mode", "user", "start_time", "ui_url",
                   "conf")
_APP_END_COLS = ("end_time", "exit_code", "state")
_JOB_START_COLS = ("stage_ids", "job_group", "description", "sql_execution_id", "submission_time", "callsite")
_JOB_END_COLS = ("completion_time", "result", "failure_reason")
_STAGE_COLS = ("name", "num_tasks", "failed_tasks", "killed_tasks", "submission_time", "completion_time", "status",
               "failure_reason", "job_ids", *STAGE_METRICS)
# tuple layouts of the hot tables (rows are built as tuples: no per-row dicts)
_EVENT_ROW = ("id", "id_hash", "type", "time", "received_at", "batch_id", "position")
_STAGE_ROW = ("spark_app_pk", "stage_id", "attempt_id", "name", "num_tasks", "failed_tasks", "killed_tasks",
              "submission_time", "completion_time", "status", "failure_reason", "job_ids", "stamp", *STAGE_METRICS)
_METRIC_ROW = ("id", "context_id", "spark_app_pk", "key", "value_num", "value_text", "value_type", "origin", "time")
_JOB_START_ROW = ("spark_app_pk", "job_id", *_JOB_START_COLS, "start_stamp")
_JOB_END_ROW = ("spark_app_pk", "job_id", *_JOB_END_COLS, "end_stamp")
_APP_CONTEXT_ROW = ("id", "app_id", "attempt_id", "context_rank", "context_id")


def _add_dataset(rows: _Rows, ds: dict[str, Any], op_id: str, ctx_pk: str | None, app_pk: str | None,
                 query_pk: str | None, time: str) -> None:
    identity = _dataset_identity(ds)
    pk = _dataset_pk(identity)
    rows.datasets.setdefault(pk, {
        "id": pk, "identity": identity, "uri": ds.get("uri"), "path": ds.get("path"),
        "table_name": ds.get("table"), "format": ds.get("format"),
    })
    rows.dataset_ops.append({
        "id": op_id, "dataset_pk": pk, "context_id": ctx_pk, "spark_app_pk": app_pk, "sql_query_pk": query_pk,
        "operation": ds.get("operation") or "unknown", "name": ds.get("name"), "mode": ds.get("mode"),
        "format": ds.get("format"), "rows": ds.get("rows"), "bytes": ds.get("bytes"), "files": ds.get("files"),
        "schema": _json(ds.get("schema")), "schema_truncated": ds.get("schema_truncated"),
        "column_stats": _json(ds.get("column_stats")), "time": time,
    })


_ZSTD_LEVEL = 1  # ~1.3 us/event and ~9x smaller than the JSON on this mix; level 3 costs twice the CPU
_compressors = threading.local()  # a ZstdCompressor is reusable but not shareable between threads


def _compress(data: bytes) -> bytes:
    compressor = getattr(_compressors, "zstd", None)
    if compressor is None:
        compressor = _compressors.zstd = zstandard.ZstdCompressor(level=_ZSTD_LEVEL)
    return compressor.compress(data)


def collect(prepared: Prepared, keep: list[int] | None = None) -> _Rows:
    """Rows for the events at `keep` (default: the first occurrence of each id). Pure: no database."""
    if keep is None:
        keep = list(prepared.first.values())
    batch_id = uuid.uuid4().hex
    rows = _collect(prepared, keep, prepared.hashes, batch_id)
    rows.batch = (batch_id, prepared.received_at, _compress(orjson.dumps(prepared.events)))
    rows.keep = keep
    return rows


def raw_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored (sanitized) JSON of events, by id, from their batches' audit copies."""
    found: dict[str, dict[str, Any]] = {}
    hashes = [id_hash(event_id) for event_id in event_ids]
    locations = select_in(conn, "SELECT id, batch_id, position FROM events WHERE id_hash IN ({})", hashes)
    wanted = set(event_ids)
    bodies: dict[str, list] = {}
    for event_id, batch_id, position in locations:
        if event_id not in wanted or batch_id is None:
            continue
        if batch_id not in bodies:
            body = run(conn, "SELECT body FROM event_batches WHERE id = ?", (batch_id,)).scalar_one()
            bodies[batch_id] = orjson.loads(zstandard.ZstdDecompressor().decompress(body))
        found[event_id] = bodies[batch_id][position]
    return found


def _collect(prepared: Prepared, keep: list[int], hashes: dict[str, int], batch_id: str) -> _Rows:
    rows = _Rows()
    received = prepared.received_at
    dumps = orjson.dumps
    all_events, all_times, all_ctxs = prepared.events, prepared.times, prepared.contexts
    all_pks = prepared.context_pks or [None if c is None else _context_id(c) for c in all_ctxs]
    events_out, stages_out, metrics_out = rows.events, rows.stages, rows.metrics
    seen_contexts = rows.contexts
    app_ranks = rows.app_contexts
    stage_metrics = STAGE_METRICS
    instant_of = _instant_cached
    for index in keep:
        event = all_events[index]
        time = all_times[index]
        ctx = all_ctxs[index]
        ctx_pk = all_pks[index]
        event_id = event["id"]
        type_ = event["type"]
        payload = event["payload"]
        events_out.append((event_id, hashes[event_id], type_, time, received, batch_id, index))
        if ctx_pk is not None and ctx_pk not in seen_contexts:
            seen_contexts[ctx_pk] = (ctx, False)
            if ctx.uid:
                rows.instances.add(ctx.uid)
        spark = event.get("spark")
        app_pk = None
        if spark:
            app_pk = spark_app_pk(spark["app_id"], spark.get("attempt_id"))
            if app_pk not in rows.apps:
                rows.apps[app_pk] = {"id": app_pk, "app_id": spark["app_id"], "attempt_id": spark.get("attempt_id")}
            if ctx_pk is not None:
                # the app's context: the best-ranked one of the batch (upserted by rank like a stamp)
                rank = context_rank(ctx, False)
                best = app_ranks.get(app_pk)
                if best is None or rank > best[0]:
                    app_ranks[app_pk] = (rank, ctx_pk)
        stamp = make_stamp(time, event_id)
        if type_ == "spark_stage.completed":
            m = payload.get("metrics") or {}
            job_ids = payload.get("job_ids")
            get = payload.get
            submitted = get("submission_time")
            completed = get("completion_time")
            stages_out.append((
                app_pk, payload["stage_id"], payload["attempt_id"], get("name"), get("num_tasks"),
                get("failed_tasks"), get("killed_tasks"), None if submitted is None else instant_of(str(submitted)),
                None if completed is None else instant_of(str(completed)), payload["status"], get("failure_reason"),
                None if job_ids is None else dumps(job_ids).decode(), stamp,
                *map(m.get, stage_metrics),
            ))
        elif type_ == "metric":
            value = payload.get("value")
            if isinstance(value, bool):
                vtype, num, text = "bool", float(value), None
            elif isinstance(value, (int, float)):
                vtype, num, text = "num", float(value), None
            elif value is None:
                vtype, num, text = "null", None, None
            else:
                vtype, num, text = "str", None, str(value)
            metrics_out.append((event_id, ctx_pk, app_pk, payload["key"], num, text, vtype, payload.get("origin"),
                                time))
        elif type_ == "spark_job.start":
            rows.job_starts.append((app_pk, payload["job_id"], _json(payload.get("stage_ids")),
                                    payload.get("job_group"), payload.get("description"),
                                    payload.get("sql_execution_id"), instant(payload.get("submission_time")),
                                    payload.get("callsite"), stamp))
        elif type_ == "spark_job.end":
            rows.job_ends.append((app_pk, payload["job_id"], instant(payload.get("completion_time")),
                                  payload.get("result"), payload.get("failure_reason"), stamp))
        elif type_ in ("task_attempt.start", "task_attempt.end", "task_attempt.state",
                       "dag_run.start", "dag_run.end", "dag_run.state"):
            if ctx_pk is not None:
                rows.state_events.append({"event_id": event_id, "context_id": ctx_pk, "kind": type_.split(".")[0],
                                          "time": time, "agent": event["source"]["agent"],
                                          "payload": dumps(payload).decode()})
                rows.touched_contexts.add(ctx_pk)
        elif type_ == "spark_app.start":
            app = rows.apps[app_pk]
            rows.app_starts.append({**app, "name": payload.get("name"),
                                    "spark_version": payload.get("spark_version"),
                                    "scala_version": payload.get("scala_version"), "master": payload.get("master"),
                                    "deploy_mode": payload.get("deploy_mode"), "user": payload.get("user"),
                                    "start_time": instant(payload.get("start_time")) or time,
                                    "ui_url": payload.get("ui_url"), "conf": _json(payload.get("conf")),
                                    "start_stamp": stamp})
            if ctx is None:
                synth = synthetic_context(payload.get("name"), spark["app_id"])
                synth_pk = _context_id(synth)
                rows.contexts.setdefault(synth_pk, (synth, True))
                rank = context_rank(synth, True)
                best = app_ranks.get(app_pk)
                if best is None or rank > best[0]:
                    app_ranks[app_pk] = (rank, synth_pk)
            rows.touched_apps.add(app_pk)
        elif type_ == "spark_app.end":
            rows.app_ends.append({**rows.apps[app_pk], "end_time": instant(payload.get("end_time")) or time,
                                  "exit_code": payload.get("exit_code"), "state": payload.get("state"),
                                  "end_stamp": stamp})
            rows.touched_apps.add(app_pk)
        elif type_ == "spark_executor":
            key = {"spark_app_pk": app_pk, "executor_id": payload["executor_id"]}
            if payload["action"] == "added":
                rows.exec_added.append({**key, "host": payload.get("host"), "cores": payload.get("cores"),
                                        "added_time": time, "add_stamp": stamp})
            else:
                rows.exec_removed.append({**key, "removed_time": time, "reason": payload.get("reason"),
                                          "remove_stamp": stamp})
        elif type_ == "sql_query":
            error = payload.get("error")
            rows.queries.append({"id": event_id, "spark_app_pk": app_pk, "context_id": ctx_pk,
                                 "execution_id": payload.get("execution_id"), "action": payload.get("action"),
                                 "duration_ms": payload.get("duration_ms"), "success": payload["success"],
                                 "error": _json(error), "plan_summary": payload.get("plan_summary"),
                                 "plan_truncated": payload.get("plan_truncated"), "callsite": payload.get("callsite"),
                                 "listener": payload.get("listener"), "time": time})
            for n, ds in enumerate(payload.get("inputs") or ()):
                _add_dataset(rows, {**ds, "operation": ds.get("operation") or "read"}, f"{event_id}:i{n}",
                             ctx_pk, app_pk, event_id, time)
            for n, ds in enumerate(payload.get("outputs") or ()):
                _add_dataset(rows, {**ds, "operation": ds.get("operation") or "write"}, f"{event_id}:o{n}",
                             ctx_pk, app_pk, event_id, time)
        elif type_ == "dataset":
            _add_dataset(rows, payload, event_id, ctx_pk, app_pk, None, time)
        elif type_ == "log":
            rows.logs.append({"id": event_id, "context_id": ctx_pk, "spark_app_pk": app_pk,
                              "position": payload.get("position"), "seq": payload.get("seq"),
                              "text": payload["text"], "truncated": payload.get("truncated"), "time": time})
        elif type_ == "agent_health":
            source = event["source"]
            rows.health.append({"id": event_id, "agent": source.get("agent"), "host": source.get("host"),
                                "pid": source.get("pid"), "version": source.get("version"), "context_id": ctx_pk,
                                "spark_app_pk": app_pk, "time": time,
                                **{k: payload.get(k) for k in ("events_sent", "events_dropped", "events_spooled",
                                                               "events_replayed", "queue_size", "send_errors",
                                                               "reason")}})
        elif type_ == "dag.definition":
            uid = ctx.uid if ctx is not None else (event.get("context") or {}).get("uid")
            if uid:
                rows.instances.add(uid)
            dag_id = payload["dag_id"]
            rows.dags.append({"id": relink.dag_pk(uid, dag_id), "uid": uid, "dag_id": dag_id,
                              "description": payload.get("description"), "schedule": payload.get("schedule"),
                              "owners": _json(payload.get("owners")), "tags": _json(payload.get("tags")),
                              "fileloc": payload.get("fileloc"), "is_paused": payload.get("is_paused"),
                              "next_run_date": instant(payload.get("next_run_date")),
                              "tasks": _json(payload.get("tasks")), "is_active": payload.get("is_active"),
                              "stamp": stamp})
    return rows


_DAG_COLS = ("uid", "dag_id", "description", "schedule", "owners", "tags", "fileloc", "is_paused", "next_run_date",
             "tasks", "is_active")


def store(conn: Connection, prepared: Prepared, rows: _Rows | None = None) -> tuple[int, int]:
    """Write a prepared batch (inside the caller's transaction), with its rows from `collect()` when the caller
    made them outside the write lock. Returns (accepted, duplicates)."""
    known = _known(conn, prepared)
    if known:  # a replay: only the events not stored yet
        keep = [index for event_id, index in prepared.first.items() if event_id not in known]
        rows = collect(prepared, keep) if keep else None
    elif rows is None:
        rows = collect(prepared)
    if rows is None:
        return 0, len(prepared.events)
    keep = rows.keep
    duplicates = len(prepared.events) - len(keep)
    # plain inserts: the id check above, under the write lock, is what keeps events (and metrics) unique
    insert_rows(conn, event_batches, [rows.batch], ("id", "received_at", "body"))
    insert_rows(conn, events, rows.events, _EVENT_ROW)
    insert_ignore(conn, instances, [{"uid": uid, "first_seen": prepared.received_at} for uid in sorted(rows.instances)])

    # dags: a new (uid, dag_id) changes the known instances of that dag_id -> relink it
    relink_dags: set[str] = set()
    if rows.dags:
        uid_aliases = relink.aliases(conn)
        for d in rows.dags:  # a definition under an alias uid is its instance's
            if d["uid"] in uid_aliases:
                d["uid"] = uid_aliases[d["uid"]]
                d["id"] = relink.dag_pk(d["uid"], d["dag_id"])
        dag_pks = list({d["id"] for d in rows.dags})
        known_tasks = dict(select_in(conn, "SELECT id, tasks FROM dags WHERE id IN ({})", dag_pks))
        known = set(known_tasks)
        relink_dags.update(d["dag_id"] for d in rows.dags if d["id"] not in known and d["uid"])
        for d in rows.dags:  # a definition without tasks (a DAG gone from Airflow) keeps the structure known
            if d["tasks"] is None:
                d["tasks"] = known_tasks.get(d["id"])
        upsert_lww(conn, dags, rows.dags, ("id",), "stamp", _DAG_COLS)

    # contexts: new distinct ones are inserted unlinked, then relinked with their neighbourhood
    new_by_dag: dict[str, list[NormalizedContext]] = {}
    if rows.contexts:
        pks = list(rows.contexts)
        known = {row[0] for row in select_in(conn, "SELECT id FROM contexts WHERE id IN ({})", pks)}
        new = []
        for pk, (ctx, synthetic) in rows.contexts.items():
            if pk in known:
                continue
            new.append({"id": pk, "uid": ctx.uid, "dag_id": ctx.dag_id, "dag_run_id": ctx.dag_run_id,
                        "logical_date": ctx.logical_date, "logical_day": ctx.logical_day,
                        "date_only": ctx.date_only, "task_id": ctx.task_id, "try_number": ctx.try_number,
                        "map_index": ctx.map_index, "synthetic": synthetic, "run_pk": None, "attempt_pk": None,
                        "ambiguous": False})
            new_by_dag.setdefault(ctx.dag_id, []).append(ctx)
        insert_ignore(conn, contexts, new)

    # Spark apps: make sure each exists, then merge start/end/context by stamps
    if rows.apps:
        insert_ignore(conn, spark_apps, list(rows.apps.values()))
        upsert_lww(conn, spark_apps, rows.app_starts, ("id",), "start_stamp", _APP_START_COLS)
        upsert_lww(conn, spark_apps, rows.app_ends, ("id",), "end_stamp", _APP_END_COLS)
        upsert_lww(conn, spark_apps, [(pk, app["app_id"], app["attempt_id"], *rows.app_contexts[pk])
                                      for pk, app in rows.apps.items() if pk in rows.app_contexts],
                   ("id",), "context_rank", ("context_id",), _APP_CONTEXT_ROW)
    upsert_lww(conn, spark_jobs, rows.job_starts, ("spark_app_pk", "job_id"), "start_stamp", _JOB_START_COLS,
               _JOB_START_ROW)
    upsert_lww(conn, spark_jobs, rows.job_ends, ("spark_app_pk", "job_id"), "end_stamp", _JOB_END_COLS, _JOB_END_ROW)
    upsert_lww(conn, spark_stages, rows.stages, ("spark_app_pk", "stage_id", "attempt_id"), "stamp", _STAGE_COLS,
               _STAGE_ROW)
    upsert_lww(conn, spark_executors, rows.exec_added, ("spark_app_pk", "executor_id"), "add_stamp",
               ("host", "cores", "added_time"))
    upsert_lww(conn, spark_executors, rows.exec_removed, ("spark_app_pk", "executor_id"), "remove_stamp",
               ("removed_time", "reason"))
    insert_ignore(conn, sql_queries, rows.queries)
    insert_ignore(conn, datasets, list(rows.datasets.values()))
    insert_ignore(conn, dataset_ops, rows.dataset_ops)
    insert_rows(conn, metrics, rows.metrics, _METRIC_ROW)
    insert_ignore(conn, log_chunks, rows.logs)
    insert_ignore(conn, agent_health, rows.health)
    insert_ignore(conn, state_events, rows.state_events)

    relink.apply(conn, relink_dags, rows.touched_contexts, rows.touched_apps, new_by_dag)
    return len(keep), duplicates
