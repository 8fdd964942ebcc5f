"""apache-airflow-providers-google: DataprocSubmitJobOperator (successor of DataProcPySparkOperator).

`pyspark_job`, `spark_job` and `spark_sql_job` get the context and tracker keys in `properties`; with
`[runlink] remote_jar` (a gs:// copy of the listener jar) also the listeners and the jar in `jar_file_uris`.
User properties are kept. Jobs given as protobuf objects instead of dicts are left alone.
"""

from __future__ import annotations

from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import LIST_KEYS, remote_spark_conf

JOB_KINDS = ("pyspark_job", "spark_job", "spark_sql_job")


def inject_job(job: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    for kind in JOB_KINDS:
        spec = job.get(kind)
        if not isinstance(spec, dict):
            continue
        properties = remote_spark_conf(raw, spec.get("properties") or {}, remote_jar)
        if remote_jar:
            # Dataproc ships jar_file_uris to driver and executors; spark.jars would be a second copy
            properties.pop("spark.jars", None) if "spark.jars" not in (spec.get("properties") or {}) else None
            uris = list(spec.get("jar_file_uris") or [])
            if remote_jar not in uris:
                uris.append(remote_jar)
            spec["jar_file_uris"] = uris
        spec["properties"] = {k: v for k, v in properties.items() if k not in LIST_KEYS or v}
    return job


def inject_dataproc_submit_job(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    job = getattr(task, "job", None)
    if isinstance(job, dict):
        undo.set_attr(task, "job", inject_job(copied(job), raw, settings.remote_jar))
