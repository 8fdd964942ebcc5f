"""The Airflow context as runlink needs it, for the listener, the injectors and custom operators.

`context_env(context)` gives the environment a child process needs to report under the task attempt;
`spark_conf(context)` the Spark conf for a driver started by the task. Both accept Airflow's template
context (what `execute(context)` receives) or a task instance, on Airflow 3 and 2.11.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runlink.context import ENV_KEYS, to_env


def isoformat_text(value: Any) -> str | None:
    """A date (datetime, pendulum, or anything with isoformat) as ISO text; other values as str."""
    if value is None:
        return None
    if isinstance(value, datetime) or hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _logical_date_of(ti: Any, dag_run: Any) -> Any:
    for holder, attr in ((dag_run, "logical_date"), (dag_run, "execution_date"), (ti, "logical_date")):
        if holder is None:
            continue
        try:
            value = getattr(holder, attr, None)
        except Exception:  # noqa: BLE001 - 2.x association proxies can raise when detached
            value = None
        if value is not None:
            return value
    # Airflow 3 task process: the dag run arrives with the startup message
    server = getattr(ti, "_ti_context_from_server", None)
    server_run = getattr(server, "dag_run", None)
    return getattr(server_run, "logical_date", None)


def _dag_run_of(ti: Any) -> Any:
    server = getattr(ti, "_ti_context_from_server", None)
    if server is not None and getattr(server, "dag_run", None) is not None:
        return server.dag_run
    try:
        # 2.x ORM TaskInstance: the relationship is loaded while the task runs
        return ti.__dict__.get("dag_run") or getattr(ti, "dag_run", None)
    except Exception:  # noqa: BLE001
        return None


def raw_context(source: Any, uid: str | None = None) -> dict[str, str]:
    """The raw runlink context (keys of `runlink.context.RAW_KEYS`) of a template context or task instance."""
    if isinstance(source, Mapping):
        ti = source.get("ti") or source.get("task_instance")
        dag_run = source.get("dag_run")
        logical = source.get("logical_date") or source.get("execution_date")
    else:
        ti = source
        dag_run = None
        logical = None
    if ti is None:
        return {}
    if dag_run is None:
        dag_run = _dag_run_of(ti)
    if logical is None:
        logical = _logical_date_of(ti, dag_run)
    if uid is None:
        from runlink.airflow.settings import get_settings

        uid = get_settings().uid
    raw: dict[str, Any] = {
        "dag_id": getattr(ti, "dag_id", None),
        "dag_run_id": getattr(ti, "run_id", None) or getattr(dag_run, "run_id", None),
        "task_id": getattr(ti, "task_id", None),
        "try_number": getattr(ti, "try_number", None),
        "map_index": getattr(ti, "map_index", None),
        "uid": uid,
    }
    if logical is not None:
        raw["execution_date"] = isoformat_text(logical)
    return {k: str(v) for k, v in raw.items() if v is not None and str(v) != ""}


def tracker_env() -> dict[str, str]:
    """RUNLINK_URL / RUNLINK_TOKEN (/ RUNLINK_TRACKING) as this process resolves them, for child processes."""
    from runlink.config import load

    config = load()
    env = {"RUNLINK_URL": config.url}
    if config.token:
        env["RUNLINK_TOKEN"] = config.token
    if not config.tracking:
        env["RUNLINK_TRACKING"] = "false"
    return env


def context_env(context: Any) -> dict[str, str]:
    """`AIRFLOW_CTX_*` (EXECUTION_DATE and UID included) plus the tracker settings, for a child process."""
    raw = raw_context(context)
    env = to_env(raw)
    if "execution_date" in raw:
        env["AIRFLOW_CTX_LOGICAL_DATE"] = raw["execution_date"]
    env.update(tracker_env())
    return env


def spark_conf(context: Any, existing: Mapping[str, str] | None = None, remote_jar: str | None = None) -> dict:
    """The Spark conf that makes a driver report under the task attempt: `existing` plus runlink's keys.

    Never overwrites a key of `existing`, except that the listener classes are appended to
    `spark.extraListeners` / `spark.sql.queryExecutionListeners` and the jar to `spark.jars`.
    `remote_jar` (s3://, gs://, dbfs:/ ...) replaces the local jar path for drivers on a remote cluster.
    """
    from runlink.airflow.sparkconf import build_spark_conf

    return build_spark_conf(raw_context(context), existing=existing, remote_jar=remote_jar)


def context_env_names() -> tuple[str, ...]:
    return (*ENV_KEYS, "RUNLINK_URL", "RUNLINK_TOKEN", "RUNLINK_TRACKING")
