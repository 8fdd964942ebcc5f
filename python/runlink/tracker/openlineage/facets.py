"""What one OpenLineage RunEvent says, read defensively: its kind, parent, Airflow context, datasets and error.

Why one place: every reader of a producer's facets caps values to the protocol's schema limits, so an odd or
over-long facet never sinks the event it came with.
"""

from __future__ import annotations

from typing import Any

from runlink.instants import format_instant, parse_instant

MAX_SCHEMA_FIELDS = 1000
MAX_DATASETS = 1000  # payload.sql_query inputs/outputs maxItems
#: an OpenLineage terminal eventType -> the runlink state it ends in
TERMINAL = {"COMPLETE": "success", "FAIL": "failed", "ABORT": "failed"}


def capped(value: Any, limit: int) -> str | None:
    """A string capped to a schema maxLength (an over-long value must not sink the event)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text[:limit]


def facets_of(node: Any) -> dict[str, Any]:
    facets = node.get("facets") if isinstance(node, dict) else None
    return facets if isinstance(facets, dict) else {}


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def classify(event: dict[str, Any]) -> str:
    """airflow_task | airflow_dag | spark_app | spark_sql | other."""
    run_f = facets_of(event["run"])
    job_type = as_dict(facets_of(event["job"]).get("jobType"))
    integration = str(job_type.get("integration") or "").upper()
    kind = str(job_type.get("jobType") or "").upper()
    airflow = as_dict(run_f.get("airflow"))
    if "airflowDagRun" in run_f or (integration == "AIRFLOW" and kind == "DAG"):
        return "airflow_dag"
    if airflow.get("task") or (integration == "AIRFLOW" and kind == "TASK"):
        return "airflow_task"
    if "spark_applicationDetails" in run_f or (integration == "SPARK" and kind == "APPLICATION"):
        return "spark_app"
    engine = str(as_dict(run_f.get("processing_engine")).get("name") or "").lower()
    if integration == "SPARK" or engine == "spark" or "spark.logicalPlan" in run_f or "spark_jobDetails" in run_f:
        return "spark_sql"
    return "other"


def parent_run_id_of(event: dict[str, Any]) -> str | None:
    parent = as_dict(facets_of(event["run"]).get("parent"))
    run_id = as_dict(parent.get("run")).get("runId")
    return run_id if isinstance(run_id, str) and 0 < len(run_id) <= 64 else None


def _text(value: Any, limit: int) -> str | None:
    return value[:limit] if isinstance(value, str) and value else None


def parent_facet(event: dict[str, Any]) -> dict[str, Any] | None:
    """The ParentRunFacet as flat fields: run_id, namespace, name, root_run_id, root_namespace, root_name."""
    parent = as_dict(facets_of(event["run"]).get("parent"))
    run_id = parent_run_id_of(event)
    if run_id is None:
        return None
    job = as_dict(parent.get("job"))
    root = as_dict(parent.get("root"))
    root_run = _text(as_dict(root.get("run")).get("runId"), 64)
    return {"run_id": run_id, "namespace": _text(job.get("namespace"), 1000), "name": _text(job.get("name"), 1000),
            "root_run_id": root_run, "root_namespace": _text(as_dict(root.get("job")).get("namespace"), 1000),
            "root_name": _text(as_dict(root.get("job")).get("name"), 1000)}


def event_instant(text: str) -> str:
    """An OpenLineage eventTime in the tracker's one spelling (check_run_event made sure it parses)."""
    moment = parse_instant(text)
    return format_instant(moment) if moment else text[:40]


def event_stamp(ol: dict[str, Any]) -> str:
    """Orders one run's events the same way in any arrival order: a terminal event beats a running one, then the
    later event, then the type name."""
    event_type = str(ol.get("eventType") or "OTHER").upper()[:16]
    return f"{1 if event_type in TERMINAL else 0}|{event_instant(ol['eventTime'])}|{event_type}"


def airflow_context(event: dict[str, Any], *, task: bool) -> dict[str, Any] | None:
    """The raw runlink context of an Airflow task (or DAG) run event, from the provider's facets."""
    run_f = facets_of(event["run"])
    airflow = as_dict(run_f.get("airflow")) or as_dict(run_f.get("airflowDagRun"))
    dag = as_dict(airflow.get("dag"))
    dag_run = as_dict(airflow.get("dagRun"))
    task_f = as_dict(airflow.get("task"))
    ti = as_dict(airflow.get("taskInstance"))
    parent_job = as_dict(as_dict(run_f.get("parent")).get("job"))
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
    ctx: dict[str, Any] = {"dag_id": capped(dag_id, 250)}
    run_id = dag_run.get("run_id")
    logical = dag_run.get("logical_date") or dag_run.get("execution_date")
    if not run_id and not logical:
        logical = as_dict(run_f.get("nominalTime")).get("nominalStartTime")
    if run_id:
        ctx["dag_run_id"] = capped(run_id, 250)
    if logical:
        ctx["logical_date"] = capped(logical, 64)
    if task:
        ctx["task_id"] = capped(task_id, 250)
        try_number = ti.get("try_number")
        if isinstance(try_number, (int, str)) and str(try_number).strip():
            ctx["try_number"] = str(try_number)
        map_index = ti.get("map_index")
        if isinstance(map_index, (int, str)) and str(map_index).strip() not in ("", "-1"):
            ctx["map_index"] = str(map_index)
    return ctx


def error_of(event: dict[str, Any]) -> dict[str, Any] | None:
    facet = as_dict(facets_of(event["run"]).get("errorMessage"))
    if not facet:
        return None
    return {"type": capped(facet.get("programmingLanguage") and "error", 500),
            "message": capped(facet.get("message"), 65536), "traceback": capped(facet.get("stackTrace"), 262144)}


def dataset(ds: Any, operation: str) -> dict[str, Any] | None:
    """An OpenLineage input/output dataset -> a protocol `dataset` object (capped, never invalid)."""
    if not isinstance(ds, dict) or not isinstance(ds.get("name"), str):
        return None
    namespace = str(ds.get("namespace") or "")
    name = ds["name"]
    facets = facets_of(ds)
    out: dict[str, Any] = {"operation": operation}
    scheme = namespace.split(":", 1)[0].lower()
    if scheme in ("file", "") and name.startswith("/"):
        out["path"] = capped(name, 4096)
    elif "://" in namespace and scheme in ("hdfs", "s3", "s3a", "s3n", "gs", "abfs", "abfss", "wasbs", "dbfs"):
        out["uri"] = capped(namespace.rstrip("/") + "/" + name.lstrip("/"), 4096)
    else:
        out["uri"] = capped(f"{namespace}/{name}" if namespace else name, 4096)
        out["table"] = capped(name, 1000)
    for ident in as_dict(facets.get("symlinks")).get("identifiers") or ():
        if isinstance(ident, dict) and str(ident.get("type") or "").upper() == "TABLE" and ident.get("name"):
            out["table"] = capped(ident["name"], 1000)
            break
    fmt = as_dict(facets.get("storage")).get("fileFormat")
    if fmt:
        out["format"] = capped(fmt, 100)
    fields = as_dict(facets.get("schema")).get("fields")
    if isinstance(fields, list):
        schema = [{"name": capped(f.get("name"), 1000) or "?", "type": capped(f.get("type") or "unknown", 4000)}
                  for f in fields[:MAX_SCHEMA_FIELDS] if isinstance(f, dict)]
        out["schema"] = schema
        out["schema_truncated"] = len(fields) > MAX_SCHEMA_FIELDS
    stats_key = "outputStatistics" if operation == "write" else "inputStatistics"
    stats = as_dict(as_dict(ds.get("outputFacets" if operation == "write" else "inputFacets")).get(stats_key))
    for src, dst in (("rowCount", "rows"), ("size", "bytes"), ("fileCount", "files")):
        value = stats.get(src)
        if isinstance(value, int) and not isinstance(value, bool):
            out[dst] = value
    return out


def datasets_of(event: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read and written datasets; a non-list `inputs`/`outputs` (the fuzz sends `"outputs": 1`) counts as none."""
    def listed(key: str) -> list[Any]:
        value = event.get(key)
        return value[:MAX_DATASETS] if isinstance(value, list) else []

    inputs = [d for d in (dataset(x, "read") for x in listed("inputs")) if d]
    outputs = [d for d in (dataset(x, "write") for x in listed("outputs")) if d]
    return inputs, outputs
