"""apache-airflow-providers-cncf-kubernetes: KubernetesPodOperator and SparkKubernetesOperator.

- KubernetesPodOperator: the pod's main container gets the context (`AIRFLOW_CTX_*`) and the tracker settings
  (`RUNLINK_URL`, `RUNLINK_TOKEN`) in its `env`; runlink's Python agent and the JVM listener read both, so a
  Spark driver or a Python job in the image reports under the task attempt. A variable the user set (in
  `env_vars` or as a `Secret`) is never replaced; with `env_from` / `configmaps` (which may carry the tracker
  settings) only the context is added.
- SparkKubernetesOperator (the Spark operator's SparkApplication): `spec.sparkConf` gets the remote conf
  (context and tracker keys; with `[runlink] remote_jar`, e.g. `local:///opt/spark/jars/...` baked in the image or
  an s3:// copy, the listeners too, and the jar in `spec.deps.jars`), `spec.driver.env` the context and tracker
  variables. The spec is read the way the operator reads it (`application_file` YAML or `template_spec`) and
  handed back as `template_spec`, so both spellings are covered; an unreadable spec is left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import remote_spark_conf
from runlink.spark.conf import LIST_KEYS

log = logging.getLogger("runlink.airflow")


def _pod_env(raw: dict[str, str]) -> dict[str, str]:
    from runlink.airflow.injection.environment import _context_env

    return _context_env(raw)


def _env_name(item: Any) -> str | None:
    return item.get("name") if isinstance(item, dict) else getattr(item, "name", None)


def _pod_env_for(task: Any, raw: dict[str, str]) -> dict[str, str]:
    """The variables to add: none a `Secret` of the operator already sets, and no tracker settings when the pod
    takes variables in bulk (`env_from`, `configmaps`): they may hold RUNLINK_URL / RUNLINK_TOKEN, and an explicit
    `env` entry would win over them."""
    env = _pod_env(raw)
    for secret in getattr(task, "secrets", None) or []:
        if getattr(secret, "deploy_type", None) == "env":
            env.pop(str(getattr(secret, "deploy_target", "")), None)
    if getattr(task, "env_from", None) or getattr(task, "configmaps", None):
        for name in ("RUNLINK_URL", "RUNLINK_TOKEN", "RUNLINK_TRACKING"):
            env.pop(name, None)
    return env


def inject_pod(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    from kubernetes.client import models as k8s

    env_vars = getattr(task, "env_vars", None)
    if isinstance(env_vars, dict):
        env = dict(env_vars)
        for name, value in _pod_env_for(task, raw).items():
            env.setdefault(name, value)
        undo.set_attr(task, "env_vars", env)
        return
    if env_vars is not None and not isinstance(env_vars, list):
        log.debug("runlink: %s.env_vars is a %s, left alone", task.task_id, type(env_vars).__name__)
        return
    env_list = list(env_vars or [])  # V1EnvVar objects are not changed, only the list is new
    taken = {_env_name(item) for item in env_list}
    for name, value in _pod_env_for(task, raw).items():
        if name not in taken:
            env_list.append(k8s.V1EnvVar(name=name, value=value))
    undo.set_attr(task, "env_vars", env_list)


def inject_spark_application(body: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    """A SparkApplication (`{"spark": {...}}` as the operator holds it, already copied) with runlink's conf."""
    app = body.get("spark")
    spec = app.get("spec") if isinstance(app, dict) else None
    if not isinstance(spec, dict):
        return body
    user = spec.get("sparkConf")
    user = dict(user) if isinstance(user, dict) else {}
    conf = remote_spark_conf(raw, user, remote_jar)
    if remote_jar:
        deps = spec.get("deps") if isinstance(spec.get("deps"), dict) else {}
        jars = list(deps.get("jars") or [])
        if remote_jar not in jars:
            jars.append(remote_jar)
        spec["deps"] = {**deps, "jars": jars}
        if "spark.jars" not in user:
            conf.pop("spark.jars", None)  # the Spark operator turns deps.jars into spark.jars
    spec["sparkConf"] = {k: v for k, v in conf.items() if k not in LIST_KEYS or v}
    driver = spec.get("driver") if isinstance(spec.get("driver"), dict) else {}
    env = list(driver.get("env") or [])
    taken = {_env_name(item) for item in env}
    env += [{"name": name, "value": value} for name, value in _pod_env(raw).items() if name not in taken]
    spec["driver"] = {**driver, "env": env}
    return body


def inject_spark_kubernetes(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    try:
        body = task.manage_template_specs()
    except Exception:  # noqa: BLE001 - a spec the operator itself will reject with its own message
        log.debug("runlink: %s: SparkApplication spec unreadable, left alone", task.task_id, exc_info=True)
        return
    if not isinstance(body, dict):
        return
    undo.set_attr(task, "template_spec", inject_spark_application(copied(body), raw, settings.remote_jar))
    undo.set_attr(task, "application_file", None)
    for cached in ("launcher", "hook"):  # cached_property values built from the old spec
        if cached in vars(task):
            undo.set_attr(task, cached, vars(task)[cached])
            delattr(task, cached)
