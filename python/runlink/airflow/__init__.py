"""runlink for Airflow: plugin + listener (entry points), cluster policy, context injection into operators.

Public helpers for custom operators, cheap to import (Airflow is imported on first use):
`context_env(context)`, `spark_conf(context)`, `instance_uid()` (the deployment's uid; also as
`get_airflow_instance_uid()`, Databand's name) and `get_monitor_dag(...)` (the syncer as a DAG, with Databand's
keyword arguments; README "Coming from Databand").
"""

from __future__ import annotations

from typing import Any

__all__ = ["context_env", "get_airflow_instance_uid", "get_monitor_dag", "instance_uid", "spark_conf"]


def __getattr__(name: str) -> Any:
    if name in ("instance_uid", "get_airflow_instance_uid"):
        from runlink.airflow import settings

        return settings.instance_uid
    if name == "get_monitor_dag":
        from runlink.airflow import monitor

        return monitor.get_monitor_dag
    if name in __all__:
        from runlink.airflow import task_context

        return getattr(task_context, name)
    raise AttributeError(name)
