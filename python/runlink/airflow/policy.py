"""Cluster policy (entry point `airflow.policy`): extra Airflow context variables for every task.

Airflow exports what `get_airflow_context_vars` returns as `AIRFLOW_CTX_<KEY>` in the task process and in the
environment of the processes operators start (BashOperator, SparkSubmitOperator, ...). runlink adds:

- `AIRFLOW_CTX_UID`: the Airflow instance (`[runlink] uid`, env `RUNLINK_AIRFLOW_UID`, or a stable default);
- `AIRFLOW_CTX_EXECUTION_DATE`: Airflow 3 only exports `AIRFLOW_CTX_LOGICAL_DATE`; older Spark jobs and Databand
  users read EXECUTION_DATE (Airflow 2 sets it itself, and its value wins);
- `AIRFLOW_CTX_RUNLINK_URL`: where the tracker is. The token is a secret and never goes into context variables
  (they also end up in places like Hive conf); it travels in `RUNLINK_TOKEN` through the injection instead.

This module is imported while `import airflow` initializes, in every Airflow process: it must stay cheap and never
raise. That is also why it hands the instance uid to the processes each component starts
(`runlink.airflow.identity.export_for_children`): Airflow 3 task processes cannot see the metadata database.
"""

from __future__ import annotations

from typing import Any

from airflow.policies import hookimpl

from runlink.airflow import identity

try:
    identity.export_for_children()
except Exception:  # noqa: BLE001, S110 - tracking is optional, Airflow's start is not
    pass


def _logical_date(context: Any) -> str | None:
    dag_run = context.get("dag_run") if hasattr(context, "get") else None
    value = getattr(dag_run, "logical_date", None) if dag_run is not None else None
    if value is None:
        value = context.get("logical_date") if hasattr(context, "get") else None
    if value is None:
        return None
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


@hookimpl
def get_airflow_context_vars(context: Any) -> dict[str, str]:
    """Adds the instance uid, the execution date and the tracker URL to the task's context variables."""
    try:
        from runlink.airflow.settings import get_settings
        from runlink.config import env_value

        result = {"uid": get_settings().uid}
        logical = _logical_date(context)
        if logical:
            result["execution_date"] = logical
        url = env_value("RUNLINK_URL")
        if url:
            result["runlink_url"] = url
        return result
    except Exception:  # noqa: BLE001 - a policy that raises would fail every task
        return {}
