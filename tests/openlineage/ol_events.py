"""OpenLineage RunEvents shaped like the producers runlink meets: the Airflow provider (facets copied from a real
apache-airflow-providers-openlineage 2.20 dag.test() capture) and openlineage-spark (application and SQL execution
events with spark_applicationDetails, spark.logicalPlan, parent facets, schema and output statistics)."""

from __future__ import annotations

import uuid
from typing import Any

PRODUCER_AF = "https://github.com/apache/airflow/tree/providers-openlineage/2.20.3"
PRODUCER_SPARK = "https://github.com/OpenLineage/OpenLineage/tree/1.54.0/integration/spark"
SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"


def _facet(body: dict[str, Any], producer: str = PRODUCER_AF) -> dict[str, Any]:
    return {"_producer": producer, "_schemaURL": "https://openlineage.io/spec/facets/x.json", **body}


def airflow_task(event_type: str, time: str, *, dag_id: str, task_id: str, run_id: str, logical_date: str | None,
                 try_number: int = 1, ol_run_id: str, dag_ol_run_id: str, namespace: str = "default",
                 error: str | None = None, operator: str = "BashOperator",
                 outputs: list[dict] | None = None) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "airflow": _facet({
            "dag": {"dag_id": dag_id, "owner": "airflow", "tags": "[]"},
            "dagRun": {"dag_id": dag_id, "run_id": run_id, "logical_date": logical_date, "run_type": "manual",
                       "clear_number": 0, "conf": {}},
            "task": {"task_id": task_id, "operator_class": operator, "queue": "default"},
            "taskInstance": {"try_number": try_number, "log_url": f"http://af/{dag_id}/{task_id}"},
            "taskUuid": ol_run_id,
        }),
        "nominalTime": _facet({"nominalStartTime": logical_date, "nominalEndTime": logical_date}),
        "parent": _facet({"job": {"namespace": namespace, "name": dag_id}, "run": {"runId": dag_ol_run_id},
                          "root": {"job": {"namespace": namespace, "name": dag_id},
                                   "run": {"runId": dag_ol_run_id}}}),
        "processing_engine": _facet({"name": "Airflow", "version": "3.3.2", "openlineageAdapterVersion": "2.20.3"}),
    }
    if error:
        facets["errorMessage"] = _facet({"message": error, "programmingLanguage": "python",
                                         "stackTrace": "Traceback ...\nValueError: " + error})
    return {"eventType": event_type, "eventTime": time, "producer": PRODUCER_AF, "schemaURL": SCHEMA,
            "run": {"runId": ol_run_id, "facets": facets},
            "job": {"namespace": namespace, "name": f"{dag_id}.{task_id}",
                    "facets": {"jobType": _facet({"integration": "AIRFLOW", "jobType": "TASK",
                                                  "processingType": "BATCH"})}},
            "inputs": [], "outputs": outputs or []}


def spark_app(event_type: str, time: str, *, app_id: str, app_name: str, ol_run_id: str,
              parent: tuple[str, str, str] | None, namespace: str = "spark_ns") -> dict[str, Any]:
    """An application-level event; `parent` = (namespace, job name, run id) of the Airflow task run."""
    facets: dict[str, Any] = {
        "spark_applicationDetails": _facet({"master": "local[1]", "appName": app_name, "applicationId": app_id,
                                            "deployMode": "client", "driverHost": "127.0.0.1", "userName": "root",
                                            "uiWebUrl": "http://127.0.0.1:4040"}, PRODUCER_SPARK),
        "processing_engine": _facet({"name": "spark", "version": "4.2.0", "openlineageAdapterVersion": "1.54.0"},
                                    PRODUCER_SPARK),
    }
    if parent:
        facets["parent"] = _facet({"job": {"namespace": parent[0], "name": parent[1]}, "run": {"runId": parent[2]}},
                                  PRODUCER_SPARK)
    return {"eventType": event_type, "eventTime": time, "producer": PRODUCER_SPARK, "schemaURL": SCHEMA,
            "run": {"runId": ol_run_id, "facets": facets},
            "job": {"namespace": namespace, "name": app_name,
                    "facets": {"jobType": _facet({"integration": "SPARK", "jobType": "APPLICATION",
                                                  "processingType": "BATCH"}, PRODUCER_SPARK)}},
            "inputs": [], "outputs": []}


def spark_sql(event_type: str, time: str, *, app_name: str, app_ol_run_id: str, ol_run_id: str,
              inputs: list[dict] | None = None, outputs: list[dict] | None = None, plan: Any = None,
              error: str | None = None, namespace: str = "spark_ns") -> dict[str, Any]:
    facets: dict[str, Any] = {
        "parent": _facet({"job": {"namespace": namespace, "name": app_name}, "run": {"runId": app_ol_run_id}},
                         PRODUCER_SPARK),
        "spark_jobDetails": _facet({"jobId": 0, "jobCallSite": "job.py:12"}, PRODUCER_SPARK),
        "processing_engine": _facet({"name": "spark", "version": "4.2.0"}, PRODUCER_SPARK),
    }
    if plan is not None:
        facets["spark.logicalPlan"] = _facet({"plan": plan}, PRODUCER_SPARK)
    if error:
        facets["errorMessage"] = _facet({"message": error, "programmingLanguage": "JAVA"}, PRODUCER_SPARK)
    return {"eventType": event_type, "eventTime": time, "producer": PRODUCER_SPARK, "schemaURL": SCHEMA,
            "run": {"runId": ol_run_id, "facets": facets},
            "job": {"namespace": namespace, "name": f"{app_name}.execute_insert_into_hadoop_fs_relation_command.out",
                    "facets": {"jobType": _facet({"integration": "SPARK", "jobType": "SQL_JOB",
                                                  "processingType": "BATCH"}, PRODUCER_SPARK)}},
            "inputs": inputs or [], "outputs": outputs or []}


def file_dataset(path: str, columns: int = 2, rows: int | None = None, size: int | None = None,
                 output: bool = False) -> dict[str, Any]:
    ds: dict[str, Any] = {"namespace": "file", "name": path, "facets": {
        "schema": _facet({"fields": [{"name": f"c{i}", "type": "long"} for i in range(columns)]}, PRODUCER_SPARK),
        "storage": _facet({"storageLayer": "default", "fileFormat": "parquet"}, PRODUCER_SPARK)}}
    if output and rows is not None:
        ds["outputFacets"] = {"outputStatistics": _facet({"rowCount": rows, "size": size}, PRODUCER_SPARK)}
    return ds


def new_id() -> str:
    return str(uuid.uuid4())
