"""Context injection into operators, one module per operator family (like Airflow's providers).

`apply(task, raw, settings)` runs inside the wrapped `execute()` (after templates are rendered, on Airflow 3 and
2.11 alike) and returns an `Undo` that puts back every attribute and environment variable it changed. Operators
are matched by class name along the MRO, so subclasses are covered and no provider is imported here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runlink.airflow.injection.base import Undo

log = logging.getLogger("runlink.airflow")

#: operator class name -> "module:function" of its injector
INJECTORS: dict[str, str] = {
    "SparkSubmitOperator": "runlink.airflow.injection.spark:inject_spark_submit",
    "BashOperator": "runlink.airflow.injection.bash:inject_bash",
    "EmrAddStepsOperator": "runlink.airflow.injection.amazon:inject_emr_add_steps",
    "DatabricksSubmitRunOperator": "runlink.airflow.injection.databricks:inject_submit_run",
    "DatabricksRunNowOperator": "runlink.airflow.injection.databricks:inject_run_now",
    "DataprocSubmitJobOperator": "runlink.airflow.injection.google:inject_dataproc_submit_job",
    "DataprocCreateBatchOperator": "runlink.airflow.injection.google:inject_dataproc_create_batch",
    "DataprocInstantiateInlineWorkflowTemplateOperator":
        "runlink.airflow.injection.google:inject_dataproc_inline_template",
    "EmrServerlessStartJobOperator": "runlink.airflow.injection.amazon:inject_emr_serverless",
    "EmrContainerOperator": "runlink.airflow.injection.amazon:inject_emr_containers",
    "GlueJobOperator": "runlink.airflow.injection.amazon:inject_glue",
    "LivyOperator": "runlink.airflow.injection.livy:inject_livy",
    "SparkKubernetesOperator": "runlink.airflow.injection.kubernetes:inject_spark_kubernetes",
    "KubernetesPodOperator": "runlink.airflow.injection.kubernetes:inject_pod",
    "SparkJDBCOperator": "runlink.airflow.injection.spark:inject_spark_jdbc",
    "SparkSqlOperator": "runlink.airflow.injection.spark:inject_spark_sql",
    "PySparkOperator": "runlink.airflow.injection.spark:inject_pyspark",
    "DatabricksNotebookOperator": "runlink.airflow.injection.databricks:inject_task_operator",
    "DatabricksTaskOperator": "runlink.airflow.injection.databricks:inject_task_operator",
    "_CreateDatabricksWorkflowOperator": "runlink.airflow.injection.databricks:inject_workflow_launch",
}


def injector_for(task: Any) -> Callable[..., None] | None:
    for klass in type(task).__mro__:
        target = INJECTORS.get(klass.__name__)
        if target:
            module, _, name = target.partition(":")
            return getattr(__import__(module, fromlist=[name]), name)
    return None


def apply(task: Any, raw: dict[str, str], settings: Any) -> Undo:
    """Inject the context into the process environment and into `task`; never raises."""
    from runlink.airflow.injection.environment import inject_environment

    undo = Undo()
    _mask_token_in_task_logs()
    try:
        inject_environment(raw, undo)
    except Exception:  # noqa: BLE001 - injection is best effort, the task runs anyway
        log.warning("runlink: could not set the task environment", exc_info=True)
    try:
        injector = injector_for(task)
        if injector is not None:
            injector(task, raw, settings, undo)
    except Exception:  # noqa: BLE001
        log.warning("runlink: could not inject the context into %s", type(task).__name__, exc_info=True)
    return undo


def _mask_token_in_task_logs() -> None:
    """Operators log the request they send (LivyHook, the Databricks workflow launch, the pod spec at debug):
    Airflow's secrets masker hides the token there, as it hides connection passwords."""
    from runlink.config import load

    token = load().token
    if not token:
        return
    for module in ("airflow.sdk.log", "airflow.utils.log.secrets_masker"):
        try:
            __import__(module, fromlist=["mask_secret"]).mask_secret(token, "RUNLINK_TOKEN")
            return
        except Exception:  # noqa: BLE001 - older or newer Airflow: try the next location
            continue
