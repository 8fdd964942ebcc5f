"""A prepared batch -> rows per table, one handler per event type (`HANDLERS`), without touching the database.

Pure, so several worker processes do this part in parallel, outside the write lock. A new event type is one
handler function and one line in `HANDLERS`; types without a handler are kept in the audit copy only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import orjson

from runlink import ids
from runlink.context import NormalizedContext, stored_instant, stored_instant_text
from runlink.instants import format_instant, parse_instant
from runlink.tracker import relink, sql_tables
from runlink.tracker.ingest import audit
from runlink.tracker.ingest.prepare import Prepared, context_id, context_rank, spark_app_pk, synthetic_context
from runlink.tracker.merge import stamp as make_stamp
from runlink.tracker.models import STAGE_METRICS


class Rows:
    """Rows collected per table while walking a batch."""

    def __init__(self) -> None:
        self.events: list[tuple] = []
        self.state_events: list[dict] = []
        self.contexts: dict[str, tuple[NormalizedContext, bool]] = {}
        self.instances: set[str] = set()
        self.dags: list[dict] = []
        self.apps: dict[str, dict] = {}
        self.app_contexts: dict[str, tuple[str, str]] = {}  # app pk -> (best context rank, context id)
        self.app_starts: list[dict] = []
        self.app_ends: list[dict] = []
        self.job_starts: list[tuple] = []
        self.job_ends: list[tuple] = []
        self.stages: list[tuple] = []
        self.exec_added: list[dict] = []
        self.exec_removed: list[dict] = []
        self.queries: list[dict] = []
        self.sql_statements: list[dict] = []
        self.streams: dict[str, list[dict]] = {stamp: [] for stamp in STREAM_GROUPS}
        self.datasets: dict[str, dict] = {}
        self.dataset_ops: list[dict] = []
        self.metrics: list[tuple] = []
        self.spans: list[dict] = []
        self.logs: list[dict] = []
        self.health: list[dict] = []
        self.touched_contexts: set[str] = set()
        self.touched_apps: set[str] = set()
        self.app_users: set[tuple[str, str]] = set()  # (app pk, context id) of work on a shared application
        self.batch: tuple[str, str, bytes] | None = None  # (id, received_at, zstd body) of event_batches
        self.keep: list[int] = []

    def rank_app_context(self, app_pk: str, rank: str, ctx_pk: str) -> None:
        """The app's context: the best-ranked one of the batch (upserted by rank like a stamp)."""
        best = self.app_contexts.get(app_pk)
        if best is None or rank > best[0]:
            self.app_contexts[app_pk] = (rank, ctx_pk)


# tuple layouts of the hot tables (rows are built as tuples: no per-row dicts)
EVENT_ROW = ("id", "id_hash", "batch_id", "position")
STAGE_ROW = ("spark_app_pk", "stage_id", "attempt_id", "name", "num_tasks", "failed_tasks", "killed_tasks",
             "submission_time", "completion_time", "status", "failure_reason", "job_ids", "stamp", *STAGE_METRICS,
             "context_id", "callsite", "distribution", "task_skew")
METRIC_ROW = ("id", "context_id", "spark_app_pk", "key", "value_num", "value_text", "value_type", "origin", "time",
              "span_id")
JOB_START_COLS = ("stage_ids", "job_group", "description", "sql_execution_id", "submission_time", "callsite",
                  "context_id")
JOB_END_COLS = ("completion_time", "result", "failure_reason", "context_id")
JOB_START_ROW = ("spark_app_pk", "job_id", *JOB_START_COLS, "start_stamp")
#: streaming_queries: each stamp's columns (a start, an interval's figures, its rates, the end merge separately)
STREAM_GROUPS: dict[str, tuple[str, ...]] = {
    "start_stamp": ("name", "start_time"),
    "progress_stamp": ("name", "total_batches", "total_input_rows", "total_batch_ms", "max_batch_ms",
                       "latest_batch_id", "watermark", "state_rows", "sources", "sink"),
    "rates_stamp": ("input_rows_per_s", "processed_rows_per_s"),
    "end_stamp": ("state", "end_time", "error"),
}
JOB_END_ROW = ("spark_app_pk", "job_id", *JOB_END_COLS, "end_stamp")


def _json(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _dataset_identity(ds: dict[str, Any]) -> str:
    for key in ("uri", "path", "table"):
        if ds.get(key):
            return f"{key}:{ds[key]}"
    return f"name:{ds.get('name') or 'unknown'}"


def _dataset_pk(identity: str) -> str:
    return str(uuid.uuid5(ids.NAMESPACE, "dataset:" + identity))


def _add_dataset(rows: Rows, ds: dict[str, Any], op_id: str, ctx_pk: str | None, app_pk: str | None,
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
        "column_stats": _json(ds.get("column_stats")), "time": time, "span_id": ds.get("span_id"),
        "success": ds.get("success"), "error": _json(ds.get("error")), "preview": _json(ds.get("preview")),
    })


#: a handler adds one event's rows: (rows, event, time, stamp, context, context id, Spark app pk)
Handler = Callable[[Rows, dict[str, Any], str, str, NormalizedContext | None, str | None, str | None], None]


def _work_pk(event: dict[str, Any], ctx_pk: str | None) -> str | None:
    """A Spark job's or stage's context column: its task's on a shared application, else None (the app's own)."""
    return ctx_pk if event.get("work_context") else None


def _stage_completed(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
                     ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    m = payload.get("metrics") or {}
    job_ids = payload.get("job_ids")
    get = payload.get
    submitted = get("submission_time")
    completed = get("completion_time")
    distribution = get("distribution")
    skew = (distribution.get("skew") or {}).get("duration_ms") if distribution else None
    rows.stages.append((
        app_pk, payload["stage_id"], payload["attempt_id"], get("name"), get("num_tasks"),
        get("failed_tasks"), get("killed_tasks"), None if submitted is None else stored_instant_text(str(submitted)),
        None if completed is None else stored_instant_text(str(completed)), payload["status"],
        get("failure_reason"), None if job_ids is None else orjson.dumps(job_ids).decode(), stamp,
        *map(m.get, STAGE_METRICS), _work_pk(event, ctx_pk), get("callsite"), _json(distribution), skew,
    ))


def _metric(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
            ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    value = payload.get("value")
    if isinstance(value, bool):
        vtype, num, text = "bool", float(value), None
    elif isinstance(value, (int, float)):
        vtype, num, text = "num", float(value), None
    elif value is None:
        vtype, num, text = "null", None, None
    else:
        vtype, num, text = "str", None, str(value)
    rows.metrics.append((event["id"], ctx_pk, app_pk, payload["key"], num, text, vtype, payload.get("origin"), time,
                         payload.get("span_id")))


def _job_start(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
               ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    rows.job_starts.append((app_pk, payload["job_id"], _json(payload.get("stage_ids")), payload.get("job_group"),
                            payload.get("description"), payload.get("sql_execution_id"),
                            stored_instant(payload.get("submission_time")), payload.get("callsite"),
                            _work_pk(event, ctx_pk), stamp))


def _job_end(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
             ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    rows.job_ends.append((app_pk, payload["job_id"], stored_instant(payload.get("completion_time")),
                          payload.get("result"), payload.get("failure_reason"), _work_pk(event, ctx_pk), stamp))


def _state(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
           ctx_pk: str | None, app_pk: str | None) -> None:
    """A task attempt's or DAG run's state event: a fact of its context, folded by relink."""
    if ctx_pk is None:
        return
    rows.state_events.append({"event_id": event["id"], "context_id": ctx_pk, "kind": event["type"].split(".")[0],
                              "time": time, "agent": event["source"]["agent"],
                              "payload": orjson.dumps(event["payload"]).decode()})
    rows.touched_contexts.add(ctx_pk)


def _app_start(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
               ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    rows.app_starts.append({**rows.apps[app_pk], "name": payload.get("name"),
                            "spark_version": payload.get("spark_version"),
                            "scala_version": payload.get("scala_version"), "master": payload.get("master"),
                            "deploy_mode": payload.get("deploy_mode"), "user": payload.get("user"),
                            "start_time": stored_instant(payload.get("start_time")) or time,
                            "ui_url": payload.get("ui_url"), "conf": _json(payload.get("conf")),
                            "start_stamp": stamp})
    if ctx is None:
        synth = synthetic_context(payload.get("name"), event["spark"]["app_id"])
        synth_pk = context_id(synth)
        rows.contexts.setdefault(synth_pk, (synth, True))
        rows.rank_app_context(app_pk, context_rank(synth, True), synth_pk)
    rows.touched_apps.add(app_pk)


def _app_end(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
             ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    rows.app_ends.append({**rows.apps[app_pk], "end_time": stored_instant(payload.get("end_time")) or time,
                          "exit_code": payload.get("exit_code"), "state": payload.get("state"), "end_stamp": stamp})
    rows.touched_apps.add(app_pk)


def _executor(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
              ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    key = {"spark_app_pk": app_pk, "executor_id": payload["executor_id"]}
    if payload["action"] == "added":
        rows.exec_added.append({**key, "host": payload.get("host"), "cores": payload.get("cores"),
                                "added_time": time, "add_stamp": stamp})
    else:
        rows.exec_removed.append({**key, "removed_time": time, "reason": payload.get("reason"),
                                  "remove_stamp": stamp})


def _sql_query(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
               ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    event_id = event["id"]
    rows.queries.append({"id": event_id, "spark_app_pk": app_pk, "context_id": ctx_pk,
                         "execution_id": payload.get("execution_id"), "action": payload.get("action"),
                         "duration_ms": payload.get("duration_ms"), "success": payload["success"],
                         "error": _json(payload.get("error")), "plan_summary": payload.get("plan_summary"),
                         "plan_truncated": payload.get("plan_truncated"), "callsite": payload.get("callsite"),
                         "listener": payload.get("listener"), "time": time})
    for n, ds in enumerate(payload.get("inputs") or ()):
        _add_dataset(rows, {**ds, "operation": ds.get("operation") or "read"}, f"{event_id}:i{n}",
                     ctx_pk, app_pk, event_id, time)
    for n, ds in enumerate(payload.get("outputs") or ()):
        _add_dataset(rows, {**ds, "operation": ds.get("operation") or "write"}, f"{event_id}:o{n}",
                     ctx_pk, app_pk, event_id, time)


def _sql_statement(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
                   ctx_pk: str | None, app_pk: str | None) -> None:
    """A statement an Airflow SQL hook ran: its row, and (when it succeeded) the tables it read and wrote as
    datasets of the attempt; a written table's rows are the statement's rows (INSERT, CREATE TABLE AS)."""
    payload = event["payload"]
    event_id = event["id"]
    engine = payload.get("engine")
    found = sql_tables.tables(payload["statement"], engine)
    read, written = found if found is not None else (None, None)
    rows.sql_statements.append({
        "id": event_id, "context_id": ctx_pk, "seq": payload.get("seq"), "engine": engine,
        "host": payload.get("host"), "database": payload.get("database"), "hook": payload.get("hook"),
        "query_id": payload.get("query_id"), "session_id": payload.get("session_id"),
        "statement": payload["statement"], "statement_truncated": payload.get("statement_truncated"),
        "start_time": stored_instant(payload.get("start_time")) or time, "duration_ms": payload.get("duration_ms"),
        "rows": payload.get("rows"), "bytes_scanned": payload.get("bytes_scanned"), "state": payload.get("state"),
        "success": payload["success"], "error": _json(payload.get("error")), "tables_read": _json(read),
        "tables_written": _json(written), "time": time,
    })
    if not payload["success"] or ctx_pk is None:
        return
    for n, name in enumerate(read or ()):
        _add_dataset(rows, {"table": name, "operation": "read", "format": engine}, f"{event_id}:i{n}", ctx_pk,
                     None, None, time)
    for n, name in enumerate(written or ()):
        _add_dataset(rows, {"table": name, "operation": "write", "format": engine, "rows": payload.get("rows")},
                     f"{event_id}:o{n}", ctx_pk, None, None, time)


def _streaming_query(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
                     ctx_pk: str | None, app_pk: str | None) -> None:
    """A streaming query run's start, interval or end. The totals on the wire are cumulative, so the latest
    report holds them; an end's partial interval without batches leaves the last rates in place."""
    payload = event["payload"]
    get = payload.get
    kind = event["type"].rsplit(".", 1)[1]
    base = {"spark_app_pk": app_pk, "run_id": payload["run_id"], "query_id": payload["query_id"],
            "context_id": ctx_pk, "state": "running"}
    groups = rows.streams
    if kind == "start":
        groups["start_stamp"].append({**base, "name": get("name"), "start_time": time, "start_stamp": stamp})
        return
    groups["progress_stamp"].append({
        **base, **{c: get(c) for c in STREAM_GROUPS["progress_stamp"]}, "sources": _json(get("sources")),
        "progress_stamp": stamp,
    })
    if get("batches"):
        groups["rates_stamp"].append({**base, "input_rows_per_s": get("input_rows_per_s"),
                                      "processed_rows_per_s": get("processed_rows_per_s"), "rates_stamp": stamp})
    if kind == "end":
        failed = get("success") is False
        groups["end_stamp"].append({**base, "state": "failed" if failed else "succeeded", "end_time": time,
                                    "error": _json(get("error")), "end_stamp": stamp})


def _dataset(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
             ctx_pk: str | None, app_pk: str | None) -> None:
    _add_dataset(rows, event["payload"], event["id"], ctx_pk, app_pk, None, time)


def _span(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
          ctx_pk: str | None, app_pk: str | None) -> None:
    """A tracked function call, sent at its end: the event time is the end, the start is `duration_ms` before."""
    payload = event["payload"]
    duration_ms = payload["duration_ms"]
    end = parse_instant(time)
    start = None
    if end is not None:
        try:
            start = format_instant(end - timedelta(milliseconds=duration_ms))
        except OverflowError:  # a duration past year 1: the start stays unknown
            start = None
    rows.spans.append({"id": payload["span_id"], "event_id": event["id"], "context_id": ctx_pk,
                       "parent_id": payload.get("parent_span_id"), "name": payload["name"], "state": payload["state"],
                       "start_time": start, "end_time": time, "duration_ms": duration_ms,
                       "error": _json(payload.get("error")), "args": _json(payload.get("args")),
                       "result": payload.get("result")})


def _log(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
         ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    rows.logs.append({"id": event["id"], "context_id": ctx_pk, "spark_app_pk": app_pk,
                      "position": payload.get("position"), "seq": payload.get("seq"),
                      "text": payload["text"], "truncated": payload.get("truncated"), "time": time})


_HEALTH_COUNTERS = ("events_sent", "events_dropped", "events_spooled", "events_replayed", "queue_size",
                    "send_errors", "reason")


def _agent_health(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
                  ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    source = event["source"]
    rows.health.append({"id": event["id"], "agent": source.get("agent"), "host": source.get("host"),
                        "pid": source.get("pid"), "version": source.get("version"), "context_id": ctx_pk,
                        "spark_app_pk": app_pk, "time": time, **{k: payload.get(k) for k in _HEALTH_COUNTERS}})


def _dag_definition(rows: Rows, event: dict[str, Any], time: str, stamp: str, ctx: NormalizedContext | None,
                    ctx_pk: str | None, app_pk: str | None) -> None:
    payload = event["payload"]
    uid = ctx.uid if ctx is not None else (event.get("context") or {}).get("uid")
    if uid:
        rows.instances.add(uid)
    dag_id = payload["dag_id"]
    rows.dags.append({"id": relink.dag_pk(uid, dag_id), "uid": uid, "dag_id": dag_id,
                      "description": payload.get("description"), "schedule": payload.get("schedule"),
                      "owners": _json(payload.get("owners")), "tags": _json(payload.get("tags")),
                      "fileloc": payload.get("fileloc"), "is_paused": payload.get("is_paused"),
                      "next_run_date": stored_instant(payload.get("next_run_date")),
                      "tasks": _json(payload.get("tasks")), "is_active": payload.get("is_active"),
                      "stamp": stamp})


#: event type -> the handler that turns one such event into rows
HANDLERS: dict[str, Handler] = {
    "spark_stage.completed": _stage_completed,
    "metric": _metric,
    "spark_job.start": _job_start,
    "spark_job.end": _job_end,
    "task_attempt.start": _state,
    "task_attempt.end": _state,
    "task_attempt.state": _state,
    "dag_run.start": _state,
    "dag_run.end": _state,
    "dag_run.state": _state,
    "spark_app.start": _app_start,
    "spark_app.end": _app_end,
    "spark_executor": _executor,
    "sql_query": _sql_query,
    "sql_statement": _sql_statement,
    "spark_streaming_query.start": _streaming_query,
    "spark_streaming_query.progress": _streaming_query,
    "spark_streaming_query.end": _streaming_query,
    "dataset": _dataset,
    "span": _span,
    "log": _log,
    "agent_health": _agent_health,
    "dag.definition": _dag_definition,
}


def collect(prepared: Prepared, keep: list[int] | None = None) -> Rows:
    """Rows for the events at `keep` (default: the first occurrence of each id), and the batch's audit copy."""
    if keep is None:
        keep = list(prepared.first.values())
    batch_id = uuid.uuid4().hex
    rows = Rows()
    received = prepared.received_at
    hashes = prepared.hashes
    all_events, all_times, all_ctxs = prepared.events, prepared.times, prepared.contexts
    all_pks = prepared.context_pks or [None if c is None else context_id(c) for c in all_ctxs]
    all_work = prepared.work
    events_out, seen_contexts, apps = rows.events, rows.contexts, rows.apps
    handlers = HANDLERS
    for index in keep:
        event = all_events[index]
        time = all_times[index]
        ctx = all_ctxs[index]
        ctx_pk = all_pks[index]
        event_id = event["id"]
        type_ = event["type"]
        events_out.append((event_id, hashes[event_id], batch_id, index))
        if ctx_pk is not None and ctx_pk not in seen_contexts:
            seen_contexts[ctx_pk] = (ctx, False)
            if ctx.uid:
                rows.instances.add(ctx.uid)
        spark = event.get("spark")
        app_pk = None
        if spark:
            app_pk = spark_app_pk(spark["app_id"], spark.get("attempt_id"))
            if app_pk not in apps:
                apps[app_pk] = {"id": app_pk, "app_id": spark["app_id"], "attempt_id": spark.get("attempt_id")}
            if ctx_pk is not None:
                rows.rank_app_context(app_pk, context_rank(ctx, False), ctx_pk)
        work = all_work[index] if all_work else None
        if work is not None:  # a shared application: this event's rows belong to the task that caused the work
            ctx, ctx_pk = work
            if ctx_pk not in seen_contexts:
                seen_contexts[ctx_pk] = (ctx, False)
                if ctx.uid:
                    rows.instances.add(ctx.uid)
            if app_pk is not None:
                rows.app_users.add((app_pk, ctx_pk))
        handler = handlers.get(type_)
        if handler is not None:
            handler(rows, event, time, make_stamp(time, event_id), ctx, ctx_pk, app_pk)
    rows.batch = (batch_id, received, audit.pack(prepared.events))
    rows.keep = keep
    return rows
