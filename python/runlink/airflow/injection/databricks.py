"""apache-airflow-providers-databricks: DatabricksSubmitRunOperator and DatabricksRunNowOperator.

Submit run, new clusters (`new_cluster`, `tasks[].new_cluster`, `job_clusters[].new_cluster`): `spark_env_vars`
gets the context and tracker settings, `spark_conf` the context keys, and, when `[runlink] remote_jar` names a
dbfs:/ (or s3://) copy of the listener jar, the jar and the listeners. Existing clusters (`existing_cluster_id`)
cannot change their conf per run: notebook tasks get the context as `base_parameters` (read them with
`dbutils.widgets`), and the listener has to be installed on the cluster once (README, Databricks guide).

Run now: the job's clusters are defined in the job; `spark_submit_params` get `--conf` arguments.

DatabricksNotebookOperator / DatabricksTaskOperator on their own: `new_cluster` as above, notebook parameters
(`notebook_params`, `task_config.notebook_task.base_parameters`) get the context, a `spark_submit_task` gets
`--conf` arguments. In a DatabricksWorkflowTaskGroup the group's `launch` task submits the whole job: its
`job_clusters` get the launch attempt's conf (a job cluster serves several tasks: its application is linked to
the launch attempt), and each task's notebook parameters get the context of the Airflow task it stands for
(no try number: the tracker takes that task's latest attempt).
"""

from __future__ import annotations

import logging
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.injection.environment import _context_env
from runlink.airflow.sparkconf import inject_submit_args, parse_conf_args, remote_spark_conf
from runlink.context import to_env

log = logging.getLogger("runlink.airflow")


def _inject_cluster(cluster: Any, raw: dict[str, str], remote_jar: str | None) -> None:
    if not isinstance(cluster, dict):
        return
    cluster["spark_conf"] = remote_spark_conf(raw, cluster.get("spark_conf") or {}, remote_jar)
    env = dict(cluster.get("spark_env_vars") or {})
    for name, value in _context_env(raw).items():
        env.setdefault(name, value)
    cluster["spark_env_vars"] = env


def _inject_notebook(task_spec: dict[str, Any], raw: dict[str, str]) -> None:
    notebook = task_spec.get("notebook_task")
    if isinstance(notebook, dict):
        params = dict(notebook.get("base_parameters") or {})
        for name, value in to_env(raw).items():
            params.setdefault(name, value)
        notebook["base_parameters"] = params


def inject_submit_run_json(payload: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    specs = [payload, *[t for t in payload.get("tasks") or [] if isinstance(t, dict)]]
    for spec in specs:
        if "new_cluster" in spec:
            _inject_cluster(spec["new_cluster"], raw, remote_jar)
        elif spec.get("existing_cluster_id"):
            _inject_notebook(spec, raw)
    for job_cluster in payload.get("job_clusters") or []:
        if isinstance(job_cluster, dict):
            _inject_cluster(job_cluster.get("new_cluster"), raw, remote_jar)
    return payload


def inject_submit_run(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    """Older providers merge named arguments into `json` at construction, newer ones keep them as attributes
    and merge at execute time (the named ones win): inject into both."""
    payload = getattr(task, "json", None)
    if isinstance(payload, dict):
        undo.set_attr(task, "json", inject_submit_run_json(copied(payload), raw, settings.remote_jar))
    named: dict[str, Any] = {}
    for name in ("new_cluster", "tasks", "job_clusters", "notebook_task", "existing_cluster_id"):
        value = getattr(task, name, None)
        if value is not None:
            named[name] = copied(value)
    if not named:
        return
    injected = inject_submit_run_json(dict(named), raw, settings.remote_jar)
    for name in ("new_cluster", "tasks", "job_clusters", "notebook_task"):
        if name in named:
            undo.set_attr(task, name, injected[name])


def _with_conf_args(params: Any, raw: dict[str, str], remote_jar: str | None) -> Any:
    if not isinstance(params, list) or not params:
        return params
    args = [str(p) for p in params]
    conf = remote_spark_conf(raw, parse_conf_args(args), remote_jar)
    return inject_submit_args(args, conf, remote_jar)


def inject_run_now(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    payload = getattr(task, "json", None)
    if isinstance(payload, dict) and payload.get("spark_submit_params"):
        payload = copied(payload)
        payload["spark_submit_params"] = _with_conf_args(payload["spark_submit_params"], raw, settings.remote_jar)
        undo.set_attr(task, "json", payload)
    named = getattr(task, "spark_submit_params", None)
    if isinstance(named, list) and named:
        undo.set_attr(task, "spark_submit_params", _with_conf_args(copied(named), raw, settings.remote_jar))


def _with_context_params(params: Any, raw: dict[str, str]) -> Any:
    if params is not None and not isinstance(params, dict):
        return params
    params = dict(params or {})
    for name, value in to_env(raw).items():
        params.setdefault(name, value)
    return params


def _inject_task_config(config: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    notebook = config.get("notebook_task")
    if isinstance(notebook, dict):
        notebook["base_parameters"] = _with_context_params(notebook.get("base_parameters"), raw)
    submit = config.get("spark_submit_task")
    if isinstance(submit, dict):
        submit["parameters"] = _with_conf_args(submit.get("parameters"), raw, remote_jar)
    if "new_cluster" in config:
        _inject_cluster(config["new_cluster"], raw, remote_jar)
    return config


def inject_task_operator(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    """DatabricksNotebookOperator and DatabricksTaskOperator run on their own (outside a workflow group)."""
    if getattr(task, "_databricks_workflow_task_group", None) is not None:
        return  # the group's launch task submitted it, with this task's context (inject_workflow_launch)
    _inject_task_fields(task, raw, settings.remote_jar, undo)


def _inject_task_fields(task: Any, raw: dict[str, str], remote_jar: str | None, undo: Undo) -> None:
    if isinstance(getattr(task, "notebook_params", None), dict):
        undo.set_attr(task, "notebook_params", _with_context_params(copied(task.notebook_params), raw))
    if isinstance(getattr(task, "task_config", None), dict):
        undo.set_attr(task, "task_config", _inject_task_config(copied(task.task_config), raw, remote_jar))
    cluster = getattr(task, "new_cluster", None)
    if isinstance(cluster, dict) and cluster:
        cluster = copied(cluster)
        _inject_cluster(cluster, raw, remote_jar)
        undo.set_attr(task, "new_cluster", cluster)


def inject_workflow_launch(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    """The `launch` task of a DatabricksWorkflowTaskGroup (_CreateDatabricksWorkflowOperator)."""
    clusters = getattr(task, "job_clusters", None)
    if isinstance(clusters, list):
        clusters = copied(clusters)
        for job_cluster in clusters:
            if isinstance(job_cluster, dict):
                _inject_cluster(job_cluster.get("new_cluster"), raw, settings.remote_jar)
        undo.set_attr(task, "job_clusters", clusters)
    members = getattr(task, "tasks_to_convert", None)
    if not isinstance(members, dict):
        return
    for task_id, member in members.items():
        # that task's own context; its try number is not known yet: the tracker takes its latest attempt
        member_raw = {k: v for k, v in raw.items() if k not in ("task_id", "try_number", "map_index")}
        member_raw["task_id"] = str(getattr(member, "task_id", task_id))
        _inject_task_fields(member, member_raw, settings.remote_jar, undo)
