"""Translates OpenLineage RunEvents into protocol v1 events inside the ingest transaction.

The run map (`openlineage_runs`) remembers what each OpenLineage run id resolved to, so events link in any arrival
order: a SQL event whose application is unknown waits (`openlineage_pending`), a Spark application first seen
without its Airflow parent is re-pointed by an `agent_health` link event when the parent arrives. Ids: uuid5 over
(runId, eventType, eventTime, part), so a re-sent OpenLineage event changes nothing.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from sqlalchemy import Connection, delete, select, update

from runlink import __version__, ids
from runlink.context import ContextError, normalize
from runlink.instants import parse_instant
from runlink.masking import mask_text
from runlink.protocol.events import now_iso
from runlink.tracker.models import dataset_ops
from runlink.tracker.openlineage import links
from runlink.tracker.openlineage.facets import (
    TERMINAL,
    airflow_context,
    as_dict,
    capped,
    classify,
    datasets_of,
    error_of,
    event_instant,
    event_stamp,
    facets_of,
    parent_facet,
    parent_run_id_of,
)
from runlink.tracker.openlineage.tables import ol_datasets, ol_pending, ol_runs

AGENT = "openlineage"
MAX_PLAN_CHARS = 1048576  # payload.sql_query.plan_summary maxLength

_CHILD_STATE = {"START": "running", "RUNNING": "running", "COMPLETE": "success", "FAIL": "failed",
                "ABORT": "aborted"}
_RUN_FIELDS = ("kind", "job_namespace", "job_name", "parent_run_id", "spark_app_id", "spark_attempt_id", "started_at",
               "root_run_id", "parent_job_namespace", "parent_job_name", "context_id", "state", "state_stamp",
               "ended_at", "error_message", "error_stack", "error_stamp")


def ol_event_id(run_id: str, event_type: str, event_time: str, part: str) -> str:
    """Deterministic protocol event id for one derived event of one OpenLineage event."""
    return str(uuid.uuid5(ids.NAMESPACE, f"openlineage:{run_id}|{event_type}|{event_time}|{part}"))


def context_pk(raw: dict[str, Any] | None) -> str | None:
    """contexts.id of a raw runlink context (None when it names no DAG)."""
    if not raw:
        return None
    try:
        ctx = normalize(raw)
    except ContextError:
        return None
    return ids.context_id(ctx) if ctx.dag_id else None


def _dataset_key(ds: dict[str, Any]) -> str:
    for key in ("uri", "path", "table"):
        if ds.get(key):
            return f"{key}:{ds[key]}"
    return f"name:{ds.get('name') or 'unknown'}"


def merge_dataset_facts(facts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """One dataset from every event's view of it: non-null wins, the later event (stamp) wins between two."""
    merged: dict[str, Any] = {}
    for stamp in sorted(facts):
        merged.update({k: v for k, v in facts[stamp].items() if v is not None})
    return merged


class Translator:
    """Translates one request's OpenLineage events inside the ingest transaction (reads and writes the run map)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.runs: dict[str, dict[str, Any] | None] = {}
        self.dirty: set[str] = set()
        self.ignored = 0
        self.pending = 0
        self.children = 0  # events recorded on a child run linked under an attempt or DAG run
        self.linked_pending = 0  # waiting events this request linked
        self.dataset_merges: dict[str, tuple[dict[str, Any], str]] = {}  # dataset_ops id -> (merged, first time)

    # -- the run map
    def run(self, run_id: str | None) -> dict[str, Any] | None:
        if run_id is None:
            return None
        if run_id not in self.runs:
            row = self.conn.execute(select(ol_runs).where(ol_runs.c.run_id == run_id)).mappings().first()
            self.runs[run_id] = None if row is None else {
                **row, "context": orjson.loads(row["context"]) if row["context"] else None, "_new": False}
        return self.runs[run_id]

    def remember(self, run_id: str, **fields: Any) -> dict[str, Any]:
        """Merge fields (non-null wins) into the run map entry of `run_id`."""
        entry = self.run(run_id)
        if entry is None:
            entry = {"run_id": run_id, "context": None, "_new": True, **{k: None for k in _RUN_FIELDS},
                     "kind": fields.get("kind", "other")}
            self.runs[run_id] = entry
        for key, value in fields.items():
            if value is not None:
                entry[key] = value
        self.dirty.add(run_id)
        return entry

    def flush_runs(self) -> None:
        now = now_iso()
        for run_id in sorted(self.dirty):
            entry = self.runs[run_id]
            assert entry is not None
            values = {k: entry[k] for k in _RUN_FIELDS}
            values["context"] = orjson.dumps(entry["context"]).decode() if entry["context"] else None
            values["updated_at"] = now
            if entry["_new"]:
                self.conn.execute(ol_runs.insert().values(run_id=run_id, **values))
                entry["_new"] = False
            else:
                self.conn.execute(ol_runs.update().where(ol_runs.c.run_id == run_id).values(**values))
        self.dirty.clear()

    # -- building protocol events
    @staticmethod
    def _event(ol: dict[str, Any], part: str, type_: str, payload: dict[str, Any], context: dict | None = None,
               spark: dict | None = None, event_id: str | None = None) -> dict[str, Any]:
        event: dict[str, Any] = {
            "v": 1,
            "id": event_id or ol_event_id(ol["run"]["runId"], str(ol.get("eventType") or "OTHER"), ol["eventTime"],
                                          part),
            "type": type_, "time": ol["eventTime"],
            "source": {"agent": AGENT, "version": capped(__version__, 64), "host": None, "pid": None},
            "payload": payload,
        }
        if context:
            event["context"] = context
        if spark:
            event["spark"] = spark
        return event

    def _dataset_events(self, ol: dict[str, Any], context: dict | None, spark: dict | None) -> list[dict]:
        """One `dataset` event per (run, dataset, direction), whichever of the run's events lists it: its id is
        fixed, and what each event says about it is merged (after the store, `apply_dataset_merges`)."""
        inputs, outputs = datasets_of(ol)
        run_id = ol["run"]["runId"]
        stamp = event_stamp(ol)
        out: list[dict] = []
        seen: set[str] = set()
        for ds in inputs + outputs:
            op_id = ol_event_id(run_id, "DATASET", "", f"{ds['operation']}|{_dataset_key(ds)}")
            if op_id in seen:
                continue
            seen.add(op_id)
            merged, first = self._merge_dataset(op_id, run_id, ds, stamp)
            out.append(self._event(ol, "dataset", "dataset", merged, context, spark, event_id=op_id))
            self.dataset_merges[op_id] = (merged, first)
        return out

    def _merge_dataset(self, op_id: str, run_id: str, ds: dict[str, Any], stamp: str) -> tuple[dict[str, Any], str]:
        row = self.conn.execute(select(ol_datasets.c.facts).where(ol_datasets.c.op_id == op_id)).first()
        facts = orjson.loads(row.facts) if row else {}
        facts[stamp] = ds
        merged = merge_dataset_facts(facts)
        values = {"facts": orjson.dumps(facts).decode(), "merged": orjson.dumps(merged).decode()}
        if row is None:
            self.conn.execute(ol_datasets.insert().values(op_id=op_id, run_id=run_id, direction=ds["operation"],
                                                          **values))
        else:
            self.conn.execute(ol_datasets.update().where(ol_datasets.c.op_id == op_id).values(**values))
        return merged, min(s.split("|")[1] for s in facts)

    def apply_dataset_merges(self) -> None:
        """After ingest stored the dataset events: their dataset_ops rows hold the merge of every event's view
        (the first stored event may have come from START, without COMPLETE's statistics)."""
        for op_id, (merged, first) in sorted(self.dataset_merges.items()):
            schema = merged.get("schema")
            self.conn.execute(update(dataset_ops).where(dataset_ops.c.id == op_id).values(
                format=merged.get("format"), rows=merged.get("rows"), bytes=merged.get("bytes"),
                files=merged.get("files"), schema=orjson.dumps(schema).decode() if schema is not None else None,
                schema_truncated=merged.get("schema_truncated"), time=first))
        self.dataset_merges.clear()

    def _record(self, ol: dict[str, Any], run_id: str, link: tuple[dict[str, Any], str] | None) -> None:
        """A child run's job, state, times and error (merged by stamp: any order, replays change nothing)."""
        facet = parent_facet(ol) or {}
        entry = self.remember(run_id, job_namespace=capped(ol["job"].get("namespace"), 1000),
                              job_name=capped(ol["job"]["name"], 1000), parent_run_id=facet.get("run_id"),
                              root_run_id=facet.get("root_run_id"), parent_job_namespace=facet.get("namespace"),
                              parent_job_name=facet.get("name"))
        if link is not None:
            entry["context"], entry["context_id"] = link
        event_type = str(ol.get("eventType") or "OTHER").upper()
        stamp, when = event_stamp(ol), event_instant(ol["eventTime"])
        if event_type in _CHILD_STATE and (entry["state_stamp"] is None or stamp > entry["state_stamp"]):
            entry["state"], entry["state_stamp"] = _CHILD_STATE[event_type], stamp
        if event_type in ("START", "RUNNING") and (entry["started_at"] is None or when < entry["started_at"]):
            entry["started_at"] = when
        if event_type in TERMINAL and (entry["ended_at"] is None or when > entry["ended_at"]):
            entry["ended_at"] = when
        error = as_dict(facets_of(ol["run"]).get("errorMessage"))
        if error and (entry["error_stamp"] is None or stamp > entry["error_stamp"]):
            message, stack = error.get("message"), error.get("stackTrace")
            entry["error_message"] = mask_text(message[:65536]) if isinstance(message, str) else None
            entry["error_stack"] = mask_text(stack[:262144]) if isinstance(stack, str) else None
            entry["error_stamp"] = stamp

    def link(self, facet: dict[str, Any] | None) -> tuple[dict[str, Any], str] | None:
        """(raw context, contexts.id) a child files under: its parent's, known from OpenLineage events or found by
        the provider's run ids among the attempts and DAG runs runlink knows."""
        if facet is None:
            return None
        known = self.run(facet["run_id"])
        if known is not None and known.get("context"):
            pk = context_pk(known["context"])
            if pk is not None:
                return known["context"], pk
        found = links.find_parent(self.conn, facet)
        if found is None:
            return None
        if found.level == "task" or facet.get("name") == found.context.get("dag_id"):
            # the parent run itself: later events (and its other children) find it in the run map
            self.remember(facet["run_id"], kind="airflow_task" if found.level == "task" else "airflow_dag",
                          job_namespace=facet.get("namespace"), job_name=facet.get("name"), context=found.context)
        return found.context, found.context_id

    def translate(self, ol: dict[str, Any]) -> list[dict[str, Any]]:
        kind = classify(ol)
        run_id = ol["run"]["runId"]
        handler = getattr(self, "_" + kind)
        out: list[dict[str, Any]] = handler(ol, run_id)
        return out

    def _airflow_task(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        ctx = airflow_context(ol, task=True)
        if ctx is None:
            return self._other(ol, run_id)
        event_type = str(ol.get("eventType") or "OTHER").upper()
        run_f = facets_of(ol["run"])
        airflow = as_dict(run_f.get("airflow"))
        task = as_dict(airflow.get("task"))
        ti = as_dict(airflow.get("taskInstance"))
        known = self.run(run_id)
        self.remember(run_id, kind="airflow_task", job_namespace=capped(ol["job"].get("namespace"), 1000),
                      job_name=capped(ol["job"]["name"], 1000), parent_run_id=parent_run_id_of(ol), context=ctx)
        payload: dict[str, Any] = {"operator": capped(task.get("operator_class"), 500),
                                   "log_url": capped(ti.get("log_url"), 4096), "queue": capped(task.get("queue"), 256),
                                   "pool": capped(ti.get("pool") or task.get("pool"), 256)}
        out: list[dict] = []
        if event_type in ("START", "RUNNING"):
            out.append(self._event(ol, "task", "task_attempt.start",
                                   {**payload, "state": "running", "start_date": ol["eventTime"]}, ctx))
        elif event_type in TERMINAL:
            duration = ti.get("duration")
            out.append(self._event(ol, "task", "task_attempt.end", {
                **payload, "state": TERMINAL[event_type], "end_date": ol["eventTime"],
                "duration_s": duration if isinstance(duration, (int, float)) and not isinstance(duration, bool)
                else None, "error": error_of(ol) if event_type != "COMPLETE" else None}, ctx))
        out += self._dataset_events(ol, ctx, None)
        if known is None or known.get("context") != ctx:
            out += self.resolve_children(run_id, ctx)
        return out

    def _airflow_dag(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        ctx = airflow_context(ol, task=False)
        if ctx is None:
            return self._other(ol, run_id)
        self.remember(run_id, kind="airflow_dag", job_namespace=capped(ol["job"].get("namespace"), 1000),
                      job_name=capped(ol["job"]["name"], 1000), context=ctx)
        event_type = str(ol.get("eventType") or "OTHER").upper()
        dag_run = as_dict(as_dict(facets_of(ol["run"]).get("airflowDagRun")).get("dagRun"))
        payload = {"run_type": capped(dag_run.get("run_type"), 64),
                   "data_interval_start": dag_run.get("data_interval_start"),
                   "data_interval_end": dag_run.get("data_interval_end"),
                   "conf": dag_run.get("conf") if isinstance(dag_run.get("conf"), dict) else None}
        for key in ("data_interval_start", "data_interval_end"):
            if parse_instant(payload[key]) is None:
                payload[key] = None
        if event_type in ("START", "RUNNING"):
            return [self._event(ol, "dag", "dag_run.start",
                                {**payload, "state": "running", "start_date": ol["eventTime"]}, ctx)]
        if event_type in TERMINAL:
            return [self._event(ol, "dag", "dag_run.end",
                                {**payload, "state": TERMINAL[event_type], "end_date": ol["eventTime"]}, ctx)]
        self.ignored += 1
        return []

    def _spark_app(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        details = as_dict(facets_of(ol["run"]).get("spark_applicationDetails"))
        known = self.run(run_id)
        app_id = details.get("applicationId") or (known or {}).get("spark_app_id")
        if not isinstance(app_id, str) or not app_id:
            return self._spark_sql(ol, run_id)  # no application id: treat it like a SQL-level event
        app_id = app_id[:255]
        parent = parent_run_id_of(ol)
        facet = parent_facet(ol)
        link = self.link(facet)
        ctx = link[0] if link else None
        self.remember(run_id, kind="spark_app", job_namespace=capped(ol["job"].get("namespace"), 1000),
                      job_name=capped(ol["job"]["name"], 1000), parent_run_id=parent, spark_app_id=app_id,
                      context=ctx)
        self._record(ol, run_id, link)
        if link is None and parent is not None:
            self._wait(ol, parent)  # tracked as a run of its own meanwhile; listed until its parent is known
        spark = {"app_id": app_id}
        event_type = str(ol.get("eventType") or "OTHER").upper()
        engine = as_dict(facets_of(ol["run"]).get("processing_engine"))
        out: list[dict] = []
        if event_type == "START" or (event_type == "RUNNING" and details):
            out.append(self._event(ol, "app", "spark_app.start", {
                "name": capped(details.get("appName") or ol["job"]["name"], 1000),
                "master": capped(details.get("master"), 1000), "deploy_mode": capped(details.get("deployMode"), 64),
                "user": capped(details.get("userName"), 255), "ui_url": capped(details.get("uiWebUrl"), 4096),
                "spark_version": capped(engine.get("version"), 64) if str(engine.get("name", "")).lower() == "spark"
                else None, "start_time": ol["eventTime"]}, ctx, spark))
        elif event_type in TERMINAL:
            out.append(self._event(ol, "app", "spark_app.end", {
                "end_time": ol["eventTime"], "state": "succeeded" if event_type == "COMPLETE" else "failed"},
                ctx, spark))
        else:
            self.ignored += 1
        if known is None or known.get("spark_app_id") is None:
            out += self._release(run_id)
        return out

    def _spark_sql(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        parent = parent_run_id_of(ol)
        known = self.run(run_id)
        event_type = str(ol.get("eventType") or "OTHER").upper()
        if event_type == "START":
            self.remember(run_id, kind="spark_sql", parent_run_id=parent, started_at=ol["eventTime"],
                          job_name=capped(ol["job"]["name"], 1000))
        app_run = self.run(parent)
        if app_run is None or not app_run.get("spark_app_id"):
            if parent is None:
                self.ignored += 1
                return []
            return self._wait(ol, parent)
        if event_type not in TERMINAL:
            return []
        spark = {"app_id": app_run["spark_app_id"]}
        ctx = app_run.get("context")
        run_f = facets_of(ol["run"])
        started = parse_instant((known or {}).get("started_at") or (self.runs.get(run_id) or {}).get("started_at"))
        ended = parse_instant(ol["eventTime"])
        duration = (ended - started).total_seconds() * 1000 if started and ended and ended >= started else None
        plan = run_f.get("spark.logicalPlan")
        plan_text = orjson.dumps(plan).decode() if plan is not None else None
        job_details = as_dict(run_f.get("spark_jobDetails"))
        inputs, outputs = datasets_of(ol)
        app_name = capped(app_run.get("job_name"), 1000) or ""
        action = ol["job"]["name"]
        if app_name and action.startswith(app_name + "."):
            action = action[len(app_name) + 1:]
        payload = {"action": capped(action, 255), "duration_ms": duration, "success": event_type == "COMPLETE",
                   "error": error_of(ol) if event_type != "COMPLETE" else None, "inputs": inputs, "outputs": outputs,
                   "plan_summary": plan_text[:MAX_PLAN_CHARS] if plan_text else None,
                   "plan_truncated": bool(plan_text and len(plan_text) > MAX_PLAN_CHARS),
                   "callsite": capped(job_details.get("jobCallSite"), 4096), "listener": "openlineage"}
        # one query per SQL run: a second terminal event of the same run (openlineage-spark may send one per
        # Spark job of the execution) is a duplicate, not another query
        event_id = ol_event_id(run_id, "TERMINAL", "", "sql")
        return [self._event(ol, "sql", "sql_query", payload, ctx, spark, event_id=event_id)]

    def _other(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        """A child run (dbt, an openlineage-python job...): recorded under its parent's attempt or DAG run with its
        job, state, times, error and datasets; it waits while its parent is unknown."""
        facet = parent_facet(ol)
        if facet is None:
            self.ignored += 1
            return []
        known = self.run(run_id)
        link = self.link(facet)
        if link is None:
            if known is None or known.get("kind") != "spark_app":
                self.remember(run_id, kind="other")
            return self._wait(ol, facet["run_id"])
        self._record(ol, run_id, link)
        self.children += 1
        entry = self.run(facet["run_id"]) or {}
        spark = {"app_id": entry["spark_app_id"]} if entry.get("spark_app_id") else None
        out = self._dataset_events(ol, link[0], spark)
        if known is None or known.get("context") != link[0]:
            out += self.resolve_children(run_id, link[0])  # grandchildren that waited on this run
        return out

    def _wait(self, ol: dict[str, Any], parent: str) -> list[dict]:
        pending_id = ol_event_id(ol["run"]["runId"], str(ol.get("eventType") or "OTHER"), ol["eventTime"], "pending")
        exists = self.conn.execute(select(ol_pending.c.id).where(ol_pending.c.id == pending_id)).first()
        if exists is None:
            facet = parent_facet(ol) or {}
            self.conn.execute(ol_pending.insert().values(
                id=pending_id, waiting_on=parent, raw=orjson.dumps(ol).decode(), received_at=now_iso(),
                run_id=ol["run"]["runId"], event_type=capped(ol.get("eventType") or "OTHER", 16),
                event_time=event_instant(ol["eventTime"]), job_namespace=capped(ol["job"].get("namespace"), 1000),
                job_name=capped(ol["job"]["name"], 1000), parent_job_namespace=facet.get("namespace"),
                parent_job_name=facet.get("name"), root_run_id=facet.get("root_run_id"),
                root_job_name=facet.get("root_name"), status="pending"))
        self.pending += 1
        return []

    def _release(self, run_id: str) -> list[dict]:
        """Translate the events that waited for `run_id` (now resolved)."""
        rows = self.conn.execute(select(ol_pending.c.id, ol_pending.c.raw).where(ol_pending.c.waiting_on == run_id)
                                 .order_by(ol_pending.c.received_at, ol_pending.c.id)).all()
        if not rows:
            return []
        self.conn.execute(delete(ol_pending).where(ol_pending.c.id.in_([r.id for r in rows])))
        self.linked_pending += len(rows)
        out: list[dict] = []
        for row in rows:
            out += self.translate(orjson.loads(row.raw))
        return out

    def resolve_children(self, run_id: str, ctx: dict[str, Any]) -> list[dict]:
        """Spark applications seen before their Airflow parent: link them to it now; release waiting events."""
        out: list[dict] = []
        children = self.conn.execute(select(ol_runs.c.run_id).where(ol_runs.c.parent_run_id == run_id)).scalars()
        child_ids = set(children) | {r for r, e in self.runs.items() if e and e.get("parent_run_id") == run_id}
        for child_id in sorted(child_ids):
            child = self.run(child_id)
            if not child or child.get("kind") != "spark_app" or not child.get("spark_app_id"):
                continue
            if child.get("context") == ctx:
                continue
            child["context"] = ctx
            child["context_id"] = context_pk(ctx)
            self.dirty.add(child_id)
            link_id = str(uuid.uuid5(ids.NAMESPACE, f"openlineage-link:{child_id}|{run_id}|{orjson.dumps(ctx)}"))
            out.append({"v": 1, "id": link_id, "type": "agent_health", "time": now_iso(),
                        "source": {"agent": AGENT, "version": capped(__version__, 64), "host": None, "pid": None},
                        "context": ctx, "spark": {"app_id": child["spark_app_id"]},
                        "payload": {"reason": "openlineage: Spark application linked to its parent Airflow run"}})
        out += self._release(run_id)
        return out
