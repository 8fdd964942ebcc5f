"""OpenLineage RunEvents -> protocol v1 events, fed through the tracker's own ingest.

Why translate instead of storing OpenLineage as-is: the run tree, linking, merge rules, dedupe and alerts all work
on protocol v1 events, so an OpenLineage producer (the Airflow provider, openlineage-spark, any client) lands in
the SAME task attempt / Spark application as runlink's own agents, with the same validation.

Mapping (facets as the Airflow provider and openlineage-spark write them):

- Airflow task run (run facet `airflow` with `task`, or job facet `jobType` AIRFLOW/TASK): `task_attempt.start`
  (START/RUNNING) or `task_attempt.end` (COMPLETE -> success, FAIL/ABORT -> failed, `errorMessage` -> error),
  context from `airflow.dagRun` (run_id, logical_date), `airflow.task.task_id`, `airflow.taskInstance`
  (try_number, map_index); `nominalTime` stands in for a missing logical date. Inputs/outputs -> `dataset`.
- Airflow DAG run (`airflowDagRun`, or jobType DAG): `dag_run.start` / `dag_run.end`.
- Spark application (`spark_applicationDetails`, or jobType SPARK/APPLICATION): `spark_app.start|end` with the
  real `applicationId`, so it merges with runlink's JVM listener; its Airflow context comes from its `parent`
  run facet (an Airflow task run seen before or after it).
- Spark SQL execution (SPARK integration, `spark.logicalPlan`): one `sql_query` at its terminal event with
  inputs/outputs (schema, `outputStatistics`/`inputStatistics` rowCount/size/fileCount, `symlinks` tables),
  the plan (capped), duration from its START. Its app comes from its parent run (the application run).

Order independence: `openlineage_runs` remembers what each OpenLineage run id resolved to. A SQL event whose
parent application is not known yet waits in `openlineage_pending` and is translated when the parent arrives;
a Spark application first seen without its Airflow parent is tracked as a run of its own and re-pointed (by an
`agent_health` link event carrying the context: Airflow context outranks the synthetic one) when the parent
arrives. Ids: uuid5 over (runId, eventType, eventTime, part), so a re-sent OpenLineage event changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Column, Connection, Index, MetaData, String, Table, Text, delete, select, update

from runlink import __version__, ids
from runlink.context import ContextError, normalize
from runlink.instants import format_instant, parse_instant
from runlink.masking import mask_text
from runlink.protocol import ProtocolError
from runlink.protocol.events import now_iso
from runlink.tracker import openlineage_links
from runlink.tracker.models import dataset_ops

AGENT = "openlineage"
MAX_PLAN_CHARS = 1048576  # payload.sql_query.plan_summary maxLength
MAX_SCHEMA_FIELDS = 1000
MAX_DATASETS = 1000  # payload.sql_query inputs/outputs maxItems

_meta = MetaData()
#: every OpenLineage run seen: what it resolved to (Airflow context, Spark app) and, for child runs (a Spark
#: application, a dbt or openlineage-python job under an Airflow task), its state, times and error
ol_runs = Table(
    "openlineage_runs", _meta,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("job_namespace", String(1000)),
    Column("job_name", String(1000)),
    Column("parent_run_id", String(64)),
    Column("context", Text),
    Column("spark_app_id", String(255)),
    Column("spark_attempt_id", String(64)),
    Column("started_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    Column("root_run_id", String(64)),
    Column("parent_job_namespace", String(1000)),
    Column("parent_job_name", String(1000)),
    Column("context_id", String(36)),  # contexts.id the run is shown under (its parent attempt or DAG run)
    Column("state", String(16)),
    Column("state_stamp", String(80)),  # "terminal?|instant|eventType": the highest wins, in any order
    Column("ended_at", String(40)),
    Column("error_message", Text),
    Column("error_stack", Text),
    Column("error_stamp", String(80)),
    Index("ix_openlineage_runs_parent", "parent_run_id"),
    Index("ix_openlineage_runs_context", "context_id"),
)
#: events waiting for their parent run; `status` pending -> unlinked after the TTL (still linked if it arrives)
ol_pending = Table(
    "openlineage_pending", _meta,
    Column("id", String(128), primary_key=True),
    Column("waiting_on", String(64), nullable=False),
    Column("raw", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("run_id", String(64)),
    Column("event_type", String(16)),
    Column("event_time", String(40)),
    Column("job_namespace", String(1000)),
    Column("job_name", String(1000)),
    Column("parent_job_namespace", String(1000)),
    Column("parent_job_name", String(1000)),
    Column("root_run_id", String(64)),
    Column("root_job_name", String(1000)),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("unlinked_at", String(40)),
    Index("ix_openlineage_pending_waiting", "waiting_on"),
    Index("ix_openlineage_pending_status", "status", "received_at"),
)
#: one dataset per (OpenLineage run, dataset, direction): every event's view of it (`facts`, by stamp) and their
#: merge (non-null wins, the later event wins), which is what the dataset_ops row `op_id` holds
ol_datasets = Table(
    "openlineage_datasets", _meta,
    Column("op_id", String(128), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("facts", Text, nullable=False),
    Column("merged", Text, nullable=False),
    Index("ix_openlineage_datasets_run", "run_id"),
)

_TERMINAL = {"COMPLETE": "success", "FAIL": "failed", "ABORT": "failed"}
_CHILD_STATE = {"START": "running", "RUNNING": "running", "COMPLETE": "success", "FAIL": "failed",
                "ABORT": "aborted"}
_RUN_FIELDS = ("kind", "job_namespace", "job_name", "parent_run_id", "spark_app_id", "spark_attempt_id", "started_at",
               "root_run_id", "parent_job_namespace", "parent_job_name", "context_id", "state", "state_stamp",
               "ended_at", "error_message", "error_stack", "error_stamp")


def _cut(value: Any, limit: int) -> str | None:
    """A string capped to a schema maxLength (an over-long value must not sink the event)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def ol_event_id(run_id: str, event_type: str, event_time: str, part: str) -> str:
    """Deterministic protocol event id for one derived event of one OpenLineage event."""
    return str(uuid.uuid5(ids.NAMESPACE, f"openlineage:{run_id}|{event_type}|{event_time}|{part}"))


def _facets(node: Any) -> dict[str, Any]:
    facets = node.get("facets") if isinstance(node, dict) else None
    return facets if isinstance(facets, dict) else {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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


def classify(event: dict[str, Any]) -> str:
    """airflow_task | airflow_dag | spark_app | spark_sql | other."""
    run_f = _facets(event["run"])
    job_type = _dict(_facets(event["job"]).get("jobType"))
    integration = str(job_type.get("integration") or "").upper()
    kind = str(job_type.get("jobType") or "").upper()
    airflow = _dict(run_f.get("airflow"))
    if "airflowDagRun" in run_f or (integration == "AIRFLOW" and kind == "DAG"):
        return "airflow_dag"
    if airflow.get("task") or (integration == "AIRFLOW" and kind == "TASK"):
        return "airflow_task"
    if "spark_applicationDetails" in run_f or (integration == "SPARK" and kind == "APPLICATION"):
        return "spark_app"
    engine = str(_dict(run_f.get("processing_engine")).get("name") or "").lower()
    if integration == "SPARK" or engine == "spark" or "spark.logicalPlan" in run_f or "spark_jobDetails" in run_f:
        return "spark_sql"
    return "other"


def _parent_run_id(event: dict[str, Any]) -> str | None:
    parent = _dict(_facets(event["run"]).get("parent"))
    run_id = _dict(parent.get("run")).get("runId")
    return run_id if isinstance(run_id, str) and 0 < len(run_id) <= 64 else None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parent_facet(event: dict[str, Any]) -> dict[str, Any] | None:
    """The ParentRunFacet as flat fields: run_id, namespace, name, root_run_id, root_namespace, root_name."""
    parent = _dict(_facets(event["run"]).get("parent"))
    run_id = _parent_run_id(event)
    if run_id is None:
        return None
    job = _dict(parent.get("job"))
    root = _dict(parent.get("root"))
    root_run = _text(_dict(root.get("run")).get("runId"), 64)
    return {"run_id": run_id, "namespace": _text(job.get("namespace"), 1000), "name": _text(job.get("name"), 1000),
            "root_run_id": root_run, "root_namespace": _text(_dict(root.get("job")).get("namespace"), 1000),
            "root_name": _text(_dict(root.get("job")).get("name"), 1000)}


def _instant(text: str) -> str:
    """An OpenLineage eventTime in the tracker's one spelling (check_run_event made sure it parses)."""
    moment = parse_instant(text)
    return format_instant(moment) if moment else text[:40]


def _stamp(ol: dict[str, Any]) -> str:
    """Orders one run's events the same way in any arrival order: a terminal event beats a running one, then the
    later event, then the type name."""
    event_type = str(ol.get("eventType") or "OTHER").upper()[:16]
    return f"{1 if event_type in _TERMINAL else 0}|{_instant(ol['eventTime'])}|{event_type}"


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


def airflow_context(event: dict[str, Any], *, task: bool) -> dict[str, Any] | None:
    """The raw runlink context of an Airflow task (or DAG) run event, from the provider's facets."""
    run_f = _facets(event["run"])
    airflow = _dict(run_f.get("airflow")) or _dict(run_f.get("airflowDagRun"))
    dag = _dict(airflow.get("dag"))
    dag_run = _dict(airflow.get("dagRun"))
    task_f = _dict(airflow.get("task"))
    ti = _dict(airflow.get("taskInstance"))
    parent_job = _dict(_dict(run_f.get("parent")).get("job"))
    job_name = event["job"]["name"]
    dag_id = dag.get("dag_id") or dag_run.get("dag_id")
    task_id = task_f.get("task_id")
    if task and not dag_id and isinstance(parent_job.get("name"), str):
        dag_id = parent_job["name"]  # older providers: parent job = the DAG, job = "<dag_id>.<task_id>"
    if not task and not dag_id:
        dag_id = job_name
    if task and not task_id and dag_id and job_name.startswith(dag_id + "."):
        task_id = job_name[len(dag_id) + 1:]
    if not dag_id or (task and not task_id):
        return None
    ctx: dict[str, Any] = {"dag_id": _cut(dag_id, 250)}
    run_id = dag_run.get("run_id")
    logical = dag_run.get("logical_date") or dag_run.get("execution_date")
    if not run_id and not logical:
        logical = _dict(run_f.get("nominalTime")).get("nominalStartTime")
    if run_id:
        ctx["dag_run_id"] = _cut(run_id, 250)
    if logical:
        ctx["logical_date"] = _cut(logical, 64)
    if task:
        ctx["task_id"] = _cut(task_id, 250)
        try_number = ti.get("try_number")
        if isinstance(try_number, (int, str)) and str(try_number).strip():
            ctx["try_number"] = str(try_number)
        map_index = ti.get("map_index")
        if isinstance(map_index, (int, str)) and str(map_index).strip() not in ("", "-1"):
            ctx["map_index"] = str(map_index)
    return ctx


def _error(event: dict[str, Any]) -> dict[str, Any] | None:
    facet = _dict(_facets(event["run"]).get("errorMessage"))
    if not facet:
        return None
    return {"type": _cut(facet.get("programmingLanguage") and "error", 500),
            "message": _cut(facet.get("message"), 65536), "traceback": _cut(facet.get("stackTrace"), 262144)}


def dataset(ds: Any, operation: str) -> dict[str, Any] | None:
    """An OpenLineage input/output dataset -> a protocol `dataset` object (capped, never invalid)."""
    if not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
        return None
    namespace = str(ds.get("namespace") or "")
    name = ds["name"]
    facets = _facets(ds)
    out: dict[str, Any] = {"operation": operation}
    scheme = namespace.split(":", 1)[0].lower()
    if scheme in ("file", "") and name.startswith("/"):
        out["path"] = _cut(name, 4096)
    elif "://" in namespace and scheme in ("hdfs", "s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasbs", "dbfs"):
        out["uri"] = _cut(namespace.rstrip("/") + "/" + name.lstrip("/"), 4096)
    else:
        out["uri"] = _cut(f"{namespace}/{name}" if namespace else name, 4096)
        out["table"] = _cut(name, 1000)
    for ident in _dict(facets.get("symlinks")).get("identifiers") or ():
        if isinstance(ident, dict) and str(ident.get("type") or "").upper() == "TABLE" and ident.get("name"):
            out["table"] = _cut(ident["name"], 1000)
            break
    fmt = _dict(facets.get("storage")).get("fileFormat")
    if fmt:
        out["format"] = _cut(fmt, 100)
    fields = _dict(facets.get("schema")).get("fields")
    if isinstance(fields, list):
        schema = [{"name": _cut(f.get("name"), 1000) or "?", "type": _cut(f.get("type") or "unknown", 4000)}
                  for f in fields[:MAX_SCHEMA_FIELDS] if isinstance(f, dict)]
        out["schema"] = schema
        out["schema_truncated"] = len(fields) > MAX_SCHEMA_FIELDS
    stats_key = "outputStatistics" if operation == "write" else "inputStatistics"
    stats = _dict(_dict(ds.get("outputFacets" if operation == "write" else "inputFacets")).get(stats_key))
    for src, dst in (("rowCount", "rows"), ("size", "bytes"), ("fileCount", "files")):
        value = stats.get(src)
        if isinstance(value, int) and not isinstance(value, bool):
            out[dst] = value
    return out


def _datasets(event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read and written datasets; a non-list `inputs`/`outputs` (the fuzz sends `"outputs": 1`) counts as none."""
    def listed(key: str) -> list[Any]:
        value = event.get(key)
        return value[:MAX_DATASETS] if isinstance(value, list) else []

    inputs = [d for d in (dataset(x, "read") for x in listed("inputs")) if d]
    outputs = [d for d in (dataset(x, "write") for x in listed("outputs")) if d]
    return inputs, outputs


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
            "source": {"agent": AGENT, "version": _cut(__version__, 64), "host": None, "pid": None},
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
        inputs, outputs = _datasets(ol)
        run_id = ol["run"]["runId"]
        stamp = _stamp(ol)
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
        entry = self.remember(run_id, job_namespace=_cut(ol["job"].get("namespace"), 1000),
                              job_name=_cut(ol["job"]["name"], 1000), parent_run_id=facet.get("run_id"),
                              root_run_id=facet.get("root_run_id"), parent_job_namespace=facet.get("namespace"),
                              parent_job_name=facet.get("name"))
        if link is not None:
            entry["context"], entry["context_id"] = link
        event_type = str(ol.get("eventType") or "OTHER").upper()
        stamp, when = _stamp(ol), _instant(ol["eventTime"])
        if event_type in _CHILD_STATE and (entry["state_stamp"] is None or stamp > entry["state_stamp"]):
            entry["state"], entry["state_stamp"] = _CHILD_STATE[event_type], stamp
        if event_type in ("START", "RUNNING") and (entry["started_at"] is None or when < entry["started_at"]):
            entry["started_at"] = when
        if event_type in _TERMINAL and (entry["ended_at"] is None or when > entry["ended_at"]):
            entry["ended_at"] = when
        error = _dict(_facets(ol["run"]).get("errorMessage"))
        if error and (entry["error_stamp"] is None or stamp > entry["error_stamp"]):
            message, stack = error.get("message"), error.get("stackTrace")
            entry["error_message"] = mask_text(message[:65536]) if isinstance(message, str) else None
            entry["error_stack"] = mask_text(stack[:262144]) if isinstance(stack, str) else None
            entry["error_stamp"] = stamp

    def _link(self, facet: dict[str, Any] | None) -> tuple[dict[str, Any], str] | None:
        """(raw context, contexts.id) a child files under: its parent's, known from OpenLineage events or found by
        the provider's run ids among the attempts and DAG runs runlink knows."""
        if facet is None:
            return None
        known = self.run(facet["run_id"])
        if known is not None and known.get("context"):
            pk = context_pk(known["context"])
            if pk is not None:
                return known["context"], pk
        found = openlineage_links.find_parent(self.conn, facet)
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
        run_f = _facets(ol["run"])
        airflow = _dict(run_f.get("airflow"))
        task = _dict(airflow.get("task"))
        ti = _dict(airflow.get("taskInstance"))
        known = self.run(run_id)
        self.remember(run_id, kind="airflow_task", job_namespace=_cut(ol["job"].get("namespace"), 1000),
                      job_name=_cut(ol["job"]["name"], 1000), parent_run_id=_parent_run_id(ol), context=ctx)
        payload: dict[str, Any] = {"operator": _cut(task.get("operator_class"), 500),
                                   "log_url": _cut(ti.get("log_url"), 4096), "queue": _cut(task.get("queue"), 256),
                                   "pool": _cut(ti.get("pool") or task.get("pool"), 256)}
        out: list[dict] = []
        if event_type in ("START", "RUNNING"):
            out.append(self._event(ol, "task", "task_attempt.start",
                                   {**payload, "state": "running", "start_date": ol["eventTime"]}, ctx))
        elif event_type in _TERMINAL:
            duration = ti.get("duration")
            out.append(self._event(ol, "task", "task_attempt.end", {
                **payload, "state": _TERMINAL[event_type], "end_date": ol["eventTime"],
                "duration_s": duration if isinstance(duration, (int, float)) and not isinstance(duration, bool)
                else None, "error": _error(ol) if event_type != "COMPLETE" else None}, ctx))
        out += self._dataset_events(ol, ctx, None)
        if known is None or known.get("context") != ctx:
            out += self._resolve_children(run_id, ctx)
        return out

    def _airflow_dag(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        ctx = airflow_context(ol, task=False)
        if ctx is None:
            return self._other(ol, run_id)
        self.remember(run_id, kind="airflow_dag", job_namespace=_cut(ol["job"].get("namespace"), 1000),
                      job_name=_cut(ol["job"]["name"], 1000), context=ctx)
        event_type = str(ol.get("eventType") or "OTHER").upper()
        dag_run = _dict(_dict(_facets(ol["run"]).get("airflowDagRun")).get("dagRun"))
        payload = {"run_type": _cut(dag_run.get("run_type"), 64),
                   "data_interval_start": dag_run.get("data_interval_start"),
                   "data_interval_end": dag_run.get("data_interval_end"),
                   "conf": dag_run.get("conf") if isinstance(dag_run.get("conf"), dict) else None}
        for key in ("data_interval_start", "data_interval_end"):
            if parse_instant(payload[key]) is None:
                payload[key] = None
        if event_type in ("START", "RUNNING"):
            return [self._event(ol, "dag", "dag_run.start",
                                {**payload, "state": "running", "start_date": ol["eventTime"]}, ctx)]
        if event_type in _TERMINAL:
            return [self._event(ol, "dag", "dag_run.end",
                                {**payload, "state": _TERMINAL[event_type], "end_date": ol["eventTime"]}, ctx)]
        self.ignored += 1
        return []

    def _spark_app(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        details = _dict(_facets(ol["run"]).get("spark_applicationDetails"))
        known = self.run(run_id)
        app_id = details.get("applicationId") or (known or {}).get("spark_app_id")
        if not isinstance(app_id, str) or not app_id:
            return self._spark_sql(ol, run_id)  # no application id: treat it like a SQL-level event
        app_id = app_id[:255]
        parent = _parent_run_id(ol)
        facet = parent_facet(ol)
        link = self._link(facet)
        ctx = link[0] if link else None
        self.remember(run_id, kind="spark_app", job_namespace=_cut(ol["job"].get("namespace"), 1000),
                      job_name=_cut(ol["job"]["name"], 1000), parent_run_id=parent, spark_app_id=app_id,
                      context=ctx)
        self._record(ol, run_id, link)
        if link is None and parent is not None:
            self._wait(ol, parent)  # tracked as a run of its own meanwhile; listed until its parent is known
        spark = {"app_id": app_id}
        event_type = str(ol.get("eventType") or "OTHER").upper()
        engine = _dict(_facets(ol["run"]).get("processing_engine"))
        out: list[dict] = []
        if event_type == "START" or (event_type == "RUNNING" and details):
            out.append(self._event(ol, "app", "spark_app.start", {
                "name": _cut(details.get("appName") or ol["job"]["name"], 1000),
                "master": _cut(details.get("master"), 1000), "deploy_mode": _cut(details.get("deployMode"), 64),
                "user": _cut(details.get("userName"), 255), "ui_url": _cut(details.get("uiWebUrl"), 4096),
                "spark_version": _cut(engine.get("version"), 64) if str(engine.get("name", "")).lower() == "spark"
                else None, "start_time": ol["eventTime"]}, ctx, spark))
        elif event_type in _TERMINAL:
            out.append(self._event(ol, "app", "spark_app.end", {
                "end_time": ol["eventTime"], "state": "succeeded" if event_type == "COMPLETE" else "failed"},
                ctx, spark))
        else:
            self.ignored += 1
        if known is None or known.get("spark_app_id") is None:
            out += self._release(run_id)
        return out

    def _spark_sql(self, ol: dict[str, Any], run_id: str) -> list[dict]:
        parent = _parent_run_id(ol)
        known = self.run(run_id)
        event_type = str(ol.get("eventType") or "OTHER").upper()
        if event_type == "START":
            self.remember(run_id, kind="spark_sql", parent_run_id=parent, started_at=ol["eventTime"],
                          job_name=_cut(ol["job"]["name"], 1000))
        app_run = self.run(parent)
        if app_run is None or not app_run.get("spark_app_id"):
            if parent is None:
                self.ignored += 1
                return []
            return self._wait(ol, parent)
        if event_type not in _TERMINAL:
            return []
        spark = {"app_id": app_run["spark_app_id"]}
        ctx = app_run.get("context")
        run_f = _facets(ol["run"])
        started = parse_instant((known or {}).get("started_at") or (self.runs.get(run_id) or {}).get("started_at"))
        ended = parse_instant(ol["eventTime"])
        duration = (ended - started).total_seconds() * 1000 if started and ended and ended >= started else None
        plan = run_f.get("spark.logicalPlan")
        plan_text = orjson.dumps(plan).decode() if plan is not None else None
        job_details = _dict(run_f.get("spark_jobDetails"))
        inputs, outputs = _datasets(ol)
        app_name = _cut(app_run.get("job_name"), 1000) or ""
        action = ol["job"]["name"]
        if app_name and action.startswith(app_name + "."):
            action = action[len(app_name) + 1:]
        payload = {"action": _cut(action, 255), "duration_ms": duration, "success": event_type == "COMPLETE",
                   "error": _error(ol) if event_type != "COMPLETE" else None, "inputs": inputs, "outputs": outputs,
                   "plan_summary": plan_text[:MAX_PLAN_CHARS] if plan_text else None,
                   "plan_truncated": bool(plan_text and len(plan_text) > MAX_PLAN_CHARS),
                   "callsite": _cut(job_details.get("jobCallSite"), 4096), "listener": "openlineage"}
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
        link = self._link(facet)
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
            out += self._resolve_children(run_id, link[0])  # grandchildren that waited on this run
        return out

    def _wait(self, ol: dict[str, Any], parent: str) -> list[dict]:
        pending_id = ol_event_id(ol["run"]["runId"], str(ol.get("eventType") or "OTHER"), ol["eventTime"], "pending")
        exists = self.conn.execute(select(ol_pending.c.id).where(ol_pending.c.id == pending_id)).first()
        if exists is None:
            facet = parent_facet(ol) or {}
            self.conn.execute(ol_pending.insert().values(
                id=pending_id, waiting_on=parent, raw=orjson.dumps(ol).decode(), received_at=now_iso(),
                run_id=ol["run"]["runId"], event_type=_cut(ol.get("eventType") or "OTHER", 16),
                event_time=_instant(ol["eventTime"]), job_namespace=_cut(ol["job"].get("namespace"), 1000),
                job_name=_cut(ol["job"]["name"], 1000), parent_job_namespace=facet.get("namespace"),
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

    def _resolve_children(self, run_id: str, ctx: dict[str, Any]) -> list[dict]:
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
                        "source": {"agent": AGENT, "version": _cut(__version__, 64), "host": None, "pid": None},
                        "context": ctx, "spark": {"app_id": child["spark_app_id"]},
                        "payload": {"reason": "openlineage: Spark application linked to its parent Airflow run"}})
        out += self._release(run_id)
        return out


def parse_payload(body: Any) -> list[Any]:
    """The OpenLineage HTTP transport posts one event; batch-capable producers post an array."""
    if isinstance(body, list):
        return body
    if isinstance(body, dict) and isinstance(body.get("events"), list) and "run" not in body:
        return body["events"]
    return [body]


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
        link = translator._link(parent_facet(orjson.loads(raw)))
        if link is not None:
            out += translator._resolve_children(waiting_on, link[0])
    translator.flush_runs()
    return out, translator


def child_runs(conn: Connection, context_pks: list[str]) -> list[dict[str, Any]]:
    """The OpenLineage child runs filed under these contexts (an attempt's or a DAG run's), with their merged
    datasets, ordered by start: what the run tree shows under the attempt."""
    out: list[dict[str, Any]] = []
    for start in range(0, len(context_pks), 900):
        chunk = context_pks[start:start + 900]
        rows = conn.execute(select(ol_runs).where(ol_runs.c.context_id.in_(chunk),
                                                  ol_runs.c.kind.in_(("other", "spark_app")))).mappings().all()
        out += [dict(r) for r in rows]
    by_run: dict[str, list[dict[str, Any]]] = {}
    run_ids = [r["run_id"] for r in out]
    for start in range(0, len(run_ids), 900):
        for row in conn.execute(select(ol_datasets.c.run_id, ol_datasets.c.merged)
                                .where(ol_datasets.c.run_id.in_(run_ids[start:start + 900]))
                                .order_by(ol_datasets.c.direction, ol_datasets.c.op_id)):
            by_run.setdefault(row.run_id, []).append(orjson.loads(row.merged))
    children = []
    for row in sorted(out, key=lambda r: (r["started_at"] or r["ended_at"] or "", r["run_id"])):
        error = {"message": row["error_message"], "stack_trace": row["error_stack"]} \
            if row["error_message"] or row["error_stack"] else None
        children.append({"run_id": row["run_id"], "kind": row["kind"], "job_namespace": row["job_namespace"],
                         "job_name": row["job_name"], "state": row["state"], "start_time": row["started_at"],
                         "end_time": row["ended_at"], "error": error, "parent_run_id": row["parent_run_id"],
                         "root_run_id": row["root_run_id"], "context_id": row["context_id"],
                         "spark_app_id": row["spark_app_id"], "datasets": by_run.get(row["run_id"], [])})
    return children
