"""Response schemas for the OpenAPI document: every route's success answer gets one, and errors get theirs.

Why here and not as `response_model=` on each route: the routes return pre-encoded `JSONBody` (orjson; the run
tree is large), so a pydantic model would only document, never validate; the schemas are kept in one place
where they can say what a client may rely on (the key fields and their types; views may add fields: objects
are open). `document(spec)` fills the operations that declare no model of their own; tests/security check
that no operation is left without one and run schemathesis' response-schema check against a real tracker.
"""

from __future__ import annotations

from typing import Any

S: dict[str, Any] = {"type": "string"}
S_ = {"type": ["string", "null"]}
I = {"type": "integer"}  # noqa: E741 - a schema, read as "integer"
I_ = {"type": ["integer", "null"]}
N_ = {"type": ["number", "null"]}
B = {"type": "boolean"}
B_ = {"type": ["boolean", "null"]}
OBJ = {"type": "object"}
OBJ_ = {"type": ["object", "null"]}
ARR = {"type": "array"}


def obj(required: dict[str, Any], optional: dict[str, Any] | None = None) -> dict[str, Any]:
    """An open object: `required` keys always present (with their types), `optional` typed when present."""
    return {"type": "object", "properties": {**required, **(optional or {})}, "required": sorted(required)}


def arr(items: dict[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": items}


#: the cursors of a keyset page (tracker/keyset.py): pass one back as `cursor`; null at either end
PAGE = {"next": S_, "previous": S_}


def items(item: dict[str, Any], **more: Any) -> dict[str, Any]:
    return obj({"items": arr(item), **more})


RUN = obj({"id": S, "dag_id": S}, {"uid": S_, "run_id": S_, "logical_date": S_, "state": S_, "start_date": S_,
                                   "end_date": S_, "run_type": S_, "placeholder": B_, "ambiguous": B_,
                                   "synthetic": B_})
METRIC = obj({"key": S}, {"origin": S_, "time": S_})
DATASET_OP = obj({"id": S, "operation": S}, {"rows": I_, "bytes": I_, "files": I_, "uri": S_, "path": S_,
                                             "identity": S_, "name": S_})
JOB = obj({"job_id": I}, {"result": S_, "failure_reason": S_, "description": S_})
STAGE = obj({"stage_id": I, "attempt_id": I, "status": S}, {"name": S_, "failure_reason": S_, "metrics": OBJ_,
                                                            "num_tasks": I_, "failed_tasks": I_})
QUERY = obj({"id": S}, {"success": B_, "action": S_, "duration_ms": N_, "inputs": ARR, "outputs": ARR})
STREAMING_QUERY = obj({"run_id": S, "query_id": S, "state": S},
                      {"name": S_, "start_time": S_, "end_time": S_, "total_batches": I_, "total_input_rows": I_,
                       "total_batch_ms": I_, "max_batch_ms": I_, "latest_batch_id": I_, "input_rows_per_s": N_,
                       "processed_rows_per_s": N_, "watermark": S_, "state_rows": I_,
                       "sources": {"type": ["array", "null"]}, "sink": S_, "error": OBJ_})
SPARK_APP = obj({"id": S, "app_id": S}, {"name": S_, "state": S_, "start_time": S_, "end_time": S_,
                                         "ui_url": S_, "conf": OBJ_, "jobs": arr(JOB), "stages": arr(STAGE),
                                         "queries": arr(QUERY), "streaming": arr(STREAMING_QUERY),
                                         "executors": ARR, "metrics": arr(METRIC)})
#: a tracked Python function call (runlink.track / runlink.span) with the calls it made under `children`
SPAN = obj({"id": S, "name": S, "state": S}, {"parent_id": S_, "start_time": S_, "end_time": S_, "duration_ms": N_,
                                              "error": OBJ_, "args": OBJ_, "result": S_, "children": ARR,
                                              "metrics": ARR, "datasets": ARR})
TASK_ATTEMPT = obj({"id": S, "task_id": S, "map_index": I},
                   {"run_pk": S_, "try_number": I_, "state": S_, "start_date": S_, "end_date": S_,
                    "duration_s": N_, "error": OBJ_, "params": OBJ_, "log_url": S_, "metrics": arr(METRIC),
                    "datasets": arr(DATASET_OP), "spark_apps": arr(SPARK_APP), "spans": arr(SPAN)})
RUN_TREE = obj({**RUN["properties"], "task_attempts": arr(TASK_ATTEMPT)}, {
    "metrics": arr(METRIC), "datasets": arr(DATASET_OP), "spark_apps": arr(SPARK_APP), "conf": OBJ_})
RUN_TREE["required"] = ["dag_id", "id", "task_attempts"]
RULE = obj({"id": S, "name": S, "kind": S, "enabled": B}, {"params": OBJ, "webhook_url": S_, "email_to": ARR})
ALERT = obj({"id": S, "state": S}, {"rule_id": S_, "title": S_, "message": S_, "opened_at": S_,
                                    "resolved_at": S_})
INSTANCE = obj({"name": S}, {"uid": S_, "url": S_, "aliases": ARR})
DIAGNOSIS = obj({"attempt": OBJ, "verdict": S, "history": OBJ, "findings": arr(obj({"kind": S, "causes": ARR},
                                                                                     {"explained_s": N_,
                                                                                      "stage": OBJ_})),
                 "summary": S, "headline": S}, {"duration_s": N_, "change_s": N_, "ratio": N_})
LINEAGE_LIST = obj({"items": ARR}, {"status": S_, "counts": OBJ, "ttl_s": N_})

#: (method, path) -> (status, schema) for the success answer of each route that declares no model itself
RESPONSES: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {
    ("get", "/healthz"): ("200", obj({"status": S, "version": S, "db": S}, {"worker": I})),
    ("get", "/livez"): ("200", obj({"status": S}, {"worker": I})),
    ("get", "/readyz"): ("200", obj({"status": S}, {"schema": S_, "worker": I})),
    ("post", "/api/v1/events"): ("202", obj({"accepted": I, "duplicates": I})),
    ("post", "/api/v1/lineage"): ("200", obj({"accepted": I, "duplicates": I}, {"ignored": I, "pending": I})),
    ("get", "/api/v1/lineage/pending"): ("200", LINEAGE_LIST),
    ("get", "/api/v1/lineage/unlinked"): ("200", LINEAGE_LIST),
    ("get", "/api/v1/dag-runs"): ("200", items(RUN, next_cursor=S_, **PAGE)),
    ("get", "/api/v1/dag-runs/{run_pk}"): ("200", RUN_TREE),
    ("get", "/api/v1/task-attempts/{attempt_pk}"): ("200", TASK_ATTEMPT),
    ("get", "/api/v1/spark-apps/{app_pk}"): ("200", SPARK_APP),
    ("get", "/api/v1/task-attempts/{attempt_pk}/diagnosis"): ("200", DIAGNOSIS),
    ("get", "/api/v1/task-attempts/{attempt_pk}/trends"): ("200", obj({"attempt_id": S, "points": ARR,
                                                                       "series": OBJ, "task": OBJ})),
    ("get", "/api/v1/dag-runs/{run_pk}/diagnosis"): ("200", items(obj({"attempt_id": S, "verdict": S,
                                                                       "headline": S}, {"summary": S}))),
    ("get", "/api/v1/airflow-instances"): ("200", items(INSTANCE, **PAGE)),
    ("post", "/api/v1/airflow-instances"): ("201", INSTANCE),
    ("get", "/api/v1/airflow-instances/{name}"): ("200", INSTANCE),
    ("post", "/api/v1/airflow-instances/{name}/aliases"): ("200", INSTANCE),
    ("delete", "/api/v1/airflow-instances/{name}/aliases/{alias}"): ("200", INSTANCE),
    ("get", "/api/v1/airflow-instances/{name}/syncer-config"): ("200", OBJ),
    ("get", "/api/v1/airflow-instances/{name}/sync-state"): ("200", obj({"name": S})),
    ("put", "/api/v1/airflow-instances/{name}/sync-state"): ("200", obj({"name": S})),
    ("get", "/api/v1/views/instances"): ("200", items(obj({"uid": S}), runs_without_instance=I, **PAGE)),
    ("get", "/api/v1/views/instances/{name}"): ("200", obj({"instance": OBJ, "dags": ARR, "runs": ARR})),
    ("get", "/api/v1/views/spark-apps"): ("200", items(obj({"id": S}, {"state": S_, "duration_s": N_}),
                                                       filters=OBJ, states=ARR)),
    ("get", "/api/v1/views/lineage"): ("200", obj({"nodes": ARR, "edges": ARR, "depth": I, "direction": S},
                                                  {"focus": OBJ_, "truncated": B, "dags": ARR, "filters": OBJ})),
    ("get", "/api/v1/views/dags"): ("200", items(obj({"dag_id": S}, {"uid": S_, "runs": ARR}), filters=OBJ,
                                                 **PAGE)),
    ("get", "/api/v1/views/dags/{dag_id}"): ("200", obj({"dag_id": S, "runs": arr(RUN), **PAGE}, {"grid": OBJ})),
    ("get", "/api/v1/views/dag-runs/{pk}"): ("200", obj({"run": RUN, "task_attempts": arr(
        obj({"id": S, "task_id": S}, {"state": S_, "duration_s": N_}))})),
    ("get", "/api/v1/views/task-attempts/{pk}"): ("200", obj({"id": S, "task_id": S}, {"dag_run": OBJ_})),
    ("get", "/api/v1/views/spark-apps/{pk}"): ("200", SPARK_APP),
    ("get", "/api/v1/views/spark-apps/{pk}/stages/{stage_id}/{attempt_id}"): ("200", obj({"app": OBJ,
                                                                                         "stage": STAGE})),
    ("get", "/api/v1/views/datasets"): ("200", items(obj({"id": S, "identity": S}), **PAGE)),
    ("get", "/api/v1/views/datasets/{pk}"): ("200", obj({"dataset": OBJ, "operations": ARR})),
    ("get", "/api/v1/views/alerts"): ("200", obj({"open": arr(ALERT), "recent": arr(ALERT), "rules": arr(RULE)})),
    ("get", "/api/v1/alert-rules/kinds"): ("200", {"type": "object", "additionalProperties": obj(
        {"label": S, "params": ARR})}),
    ("get", "/api/v1/alert-rules"): ("200", items(RULE)),
    ("post", "/api/v1/alert-rules"): ("201", RULE),
    ("get", "/api/v1/alert-rules/{pk}"): ("200", RULE),
    ("patch", "/api/v1/alert-rules/{pk}"): ("200", RULE),
    ("get", "/api/v1/alerts"): ("200", items(ALERT, **PAGE)),
    ("post", "/api/v1/alerts/{pk}/resolve"): ("200", ALERT),
    ("post", "/api/v1/alerts/evaluate"): ("200", {"type": "object", "additionalProperties": I}),
}

#: what `detail` holds in a 4xx: FastAPI's validation list, runlink's {message, field[, index]}, or a sentence
ERROR_DETAIL = {"anyOf": [
    {"type": "array", "items": {"$ref": "#/components/schemas/ValidationError"}},
    obj({"message": S}, {"field": S_, "index": I_}),
    S,
]}
ERROR = obj({"detail": ERROR_DETAIL})


def document(spec: dict[str, Any]) -> None:
    """Fill in place: success schemas of the operations that have none, the error schema, /metrics as text."""
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas["HTTPValidationError"] = {**ERROR, "title": "HTTPValidationError"}
    schemas["Error"] = {**ERROR, "title": "Error"}
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            responses = operation.setdefault("responses", {})
            known = RESPONSES.get((method, path))
            if known is not None:
                status, schema = known
                answer = responses.setdefault(status, {"description": "OK"})
                answer["content"] = {"application/json": {"schema": schema}}
            for status, answer in responses.items():
                if status.startswith("4") and status != "422" and "content" not in answer:
                    answer["content"] = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    metrics = spec.get("paths", {}).get("/metrics", {}).get("get")
    if metrics is not None:
        metrics["responses"]["200"] = {"description": "Prometheus text exposition format",
                                       "content": {"text/plain": {"schema": S}}}


def undocumented(spec: dict[str, Any]) -> list[str]:
    """Operations whose success answer has no schema (the test of 'a response model for every route')."""
    missing = []
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            ok = False
            for status, answer in operation.get("responses", {}).items():
                if status == "204" and "content" not in answer:
                    ok = True
                elif status.startswith("2"):
                    ok = any(media.get("schema") not in (None, {}) for media in (answer.get("content") or {}).values())
            if not ok:
                missing.append(f"{method.upper()} {path}")
    return missing
