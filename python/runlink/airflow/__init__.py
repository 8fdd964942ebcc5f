"""runlink for Airflow: plugin + listener (entry points), cluster policy, context injection into operators.

Public helpers for custom operators, cheap to import (Airflow is imported on first use):
`context_env(context)`, `spark_conf(context)` and `instance_uid()` (the deployment's uid, Databand's
`get_airflow_instance_uid()`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["context_env", "instance_uid", "spark_conf"]


def __getattr__(name: str) -> Any:
    if name == "instance_uid":
        from runlink.airflow import settings

        return settings.instance_uid
    if name in __all__:
        from runlink.airflow import task_context

        return getattr(task_context, name)
    raise AttributeError(name)
