"""apache-airflow-providers-apache-spark: SparkSubmitOperator.

`conf` gets the listener conf (jar and listeners appended, `spark.env.*` context, tracker settings) without
overwriting user keys; `env_vars` gets the context so that YARN (appMasterEnv) and Kubernetes (driverEnv)
cluster-mode drivers see it too; an explicit `jars` gets the listener jar appended, since `--jars` replaces
`spark.jars`.
"""

from __future__ import annotations

import os
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import append_list, build_spark_conf, local_jar


def inject_spark_submit(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    from runlink.airflow.injection.environment import _context_env

    if not os.path.isfile(local_jar()):  # never name a listener class the driver could not load
        return
    existing = copied(getattr(task, "conf", None) or {})
    conf = build_spark_conf(raw, existing=existing)
    undo.set_attr(task, "conf", conf)
    env_vars = copied(getattr(task, "env_vars", None) or {})
    for name, value in _context_env(raw).items():
        env_vars.setdefault(name, value)
    undo.set_attr(task, "env_vars", env_vars)
    jars = getattr(task, "jars", None)
    if jars:
        undo.set_attr(task, "jars", append_list(jars, local_jar()))
    if getattr(task, "_hook", None) is not None:  # a hook built before us would not see the new conf
        undo.set_attr(task, "_hook", None)
