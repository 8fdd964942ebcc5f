"""apache-airflow-providers-google: Dataproc jobs, batches and inline workflow templates.

- DataprocSubmitJobOperator (successor of DataProcPySparkOperator): `pyspark_job`, `spark_job` and
  `spark_sql_job` get the context and tracker keys in `properties`; with `[runlink] remote_jar` (a gs:// copy of
  the listener jar) also the listeners and the jar in `jar_file_uris`.
- DataprocInstantiateInlineWorkflowTemplateOperator: the same for every job of `template["jobs"]`.
- DataprocCreateBatchOperator (Dataproc Serverless): `runtime_config.properties` gets the same keys, and the
  jar goes to the batch's `jar_file_uris`. A `Batch` protobuf is copied and filled the same way.

User properties are kept, list keys appended to. Jobs given as protobuf objects and templates that are still
strings are left alone (debug log).
"""

from __future__ import annotations

import logging
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import remote_spark_conf
from runlink.spark.conf import LIST_KEYS

log = logging.getLogger("runlink.airflow")

JOB_KINDS = ("pyspark_job", "spark_job", "spark_sql_job")
#: REST (camelCase) spellings some users paste from the Dataproc docs
JOB_KINDS_CAMEL = {"pysparkJob": "jarFileUris", "sparkJob": "jarFileUris", "sparkSqlJob": "jarFileUris"}
BATCH_KINDS = ("pyspark_batch", "spark_batch", "spark_sql_batch", "spark_r_batch")


def _properties(user: Any, raw: dict[str, str], remote_jar: str | None, jar_listed: bool) -> dict[str, str]:
    """`user` properties plus ours; `spark.jars` is dropped when the jar travels in the job's jar URIs."""
    user = dict(user or {})
    properties = remote_spark_conf(raw, user, remote_jar)
    if jar_listed and "spark.jars" not in user:
        properties.pop("spark.jars", None)  # Dataproc ships jar_file_uris itself; spark.jars would be a 2nd copy
    return {k: v for k, v in properties.items() if k not in LIST_KEYS or v}


def _with_jar(uris: Any, remote_jar: str) -> list[str]:
    uris = list(uris or [])
    if remote_jar not in uris:
        uris.append(remote_jar)
    return uris


def inject_job(job: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    kinds = [(kind, "jar_file_uris") for kind in JOB_KINDS] + list(JOB_KINDS_CAMEL.items())
    for kind, uris_key in kinds:
        spec = job.get(kind)
        if not isinstance(spec, dict):
            continue
        if remote_jar:
            spec[uris_key] = _with_jar(spec.get(uris_key), remote_jar)
        spec["properties"] = _properties(spec.get("properties"), raw, remote_jar, jar_listed=bool(remote_jar))
    return job


def inject_batch(batch: Any, raw: dict[str, str], remote_jar: str | None) -> Any:
    """A Dataproc Serverless batch (dict or `Batch` protobuf, already copied) with runlink's properties."""
    if isinstance(batch, dict):
        kind = next((k for k in BATCH_KINDS if isinstance(batch.get(k), dict)), None)
        if kind is None:
            return batch
        runtime = batch.get("runtime_config")
        if runtime is None:
            runtime = batch["runtime_config"] = {}
        if not isinstance(runtime, dict):
            log.debug("runlink: batch runtime_config is a %s, left alone", type(runtime).__name__)
            return batch
        jar_listed = bool(remote_jar) and kind != "spark_r_batch"
        if jar_listed:
            batch[kind]["jar_file_uris"] = _with_jar(batch[kind].get("jar_file_uris"), remote_jar)
        runtime["properties"] = _properties(runtime.get("properties"), raw, remote_jar, jar_listed)
        return batch
    kind = next((k for k in BATCH_KINDS if _has_proto_field(batch, k)), None)
    if kind is None:
        log.debug("runlink: Dataproc batch of type %s has no Spark job, left alone", type(batch).__name__)
        return batch
    spec = getattr(batch, kind)
    jar_listed = bool(remote_jar) and kind != "spark_r_batch"
    if jar_listed:
        uris = list(spec.jar_file_uris)
        if remote_jar not in uris:
            spec.jar_file_uris.append(remote_jar)
    properties = _properties(dict(batch.runtime_config.properties), raw, remote_jar, jar_listed)
    batch.runtime_config.properties.clear()
    batch.runtime_config.properties.update(properties)
    return batch


def _has_proto_field(message: Any, name: str) -> bool:
    try:
        return name in message and bool(getattr(message, name))
    except Exception:  # noqa: BLE001 - not a proto-plus message
        return False


def inject_dataproc_submit_job(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    job = getattr(task, "job", None)
    if isinstance(job, dict):
        undo.set_attr(task, "job", inject_job(copied(job), raw, settings.remote_jar))


def inject_dataproc_create_batch(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    batch = getattr(task, "batch", None)
    if batch is None or isinstance(batch, str):
        log.debug("runlink: %s.batch is %r, left alone", task.task_id, type(batch).__name__)
        return
    undo.set_attr(task, "batch", inject_batch(copied(batch), raw, settings.remote_jar))


def inject_dataproc_inline_template(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    template = getattr(task, "template", None)
    if not isinstance(template, dict):
        log.debug("runlink: %s.template is a %s, left alone", task.task_id, type(template).__name__)
        return
    template = copied(template)
    for job in template.get("jobs") or []:
        if isinstance(job, dict):
            inject_job(job, raw, settings.remote_jar)
    undo.set_attr(task, "template", template)
