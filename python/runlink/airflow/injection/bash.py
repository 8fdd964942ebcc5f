"""apache-airflow-providers-standard (and Airflow 2 core): BashOperator.

With `env=None` the command inherits os.environ, which holds the context while execute() runs. With an explicit
`env` and `append_env=False` the command sees only that dict (plus Airflow's context variables), so the runlink
variables (context, tracker, SPARK_CONF_DIR, SPARK_DIST_CLASSPATH) are added to it, never replacing a user key.
"""

from __future__ import annotations

import os
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.task_context import context_env_names


def inject_bash(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    env = getattr(task, "env", None)
    if env is None or not isinstance(env, dict):
        return
    env = copied(env)
    for name in (*context_env_names(), "AIRFLOW_CTX_LOGICAL_DATE", "SPARK_CONF_DIR", "SPARK_DIST_CLASSPATH"):
        value = os.environ.get(name)
        if value and name not in env:
            env[name] = value
    undo.set_attr(task, "env", env)
