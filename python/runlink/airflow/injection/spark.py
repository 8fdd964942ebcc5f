"""apache-airflow-providers-apache-spark: SparkSubmitOperator, SparkJDBCOperator, SparkSqlOperator, `@task.pyspark`.

All four start the driver on this machine through Spark's launcher, which reads the private `spark-defaults.conf`
that `environment.py` puts in `$SPARK_CONF_DIR` (user keys kept, listener lists appended). An explicit conf
passed on the command line (`--conf`) replaces a spark-defaults value, so:

- SparkSubmitOperator / SparkJDBCOperator: `conf` (`_spark_conf` for JDBC) gets the listener conf (user keys
  kept, list keys appended to the user's value, or to the spark-defaults value when the user set none), so a
  cluster-mode driver gets it too; `env_vars` gets the context (YARN appMasterEnv, Kubernetes driverEnv); an
  explicit `jars` (`_spark_jars`) gets the listener jar appended, since `--jars` replaces `spark.jars`.
- SparkSqlOperator (`spark-sql` always runs its driver here): its `_conf` (a dict, or the provider's
  `"k=v,k2=v2"` string, which is turned into a dict because list values hold commas) gets the same conf.
- `@task.pyspark`: `config_kwargs` reaches the JVM as `--conf`; a list key the user set there gets ours appended.
  A Spark Connect session (`spark.remote` / an `sc://` connection) is left alone: the driver is the server's.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import build_spark_conf, local_jar
from runlink.spark.conf import LIST_KEYS, append_list

log = logging.getLogger("runlink.airflow")


def _defaults_lists() -> dict[str, str]:
    """List keys of the spark-defaults.conf in effect (runlink's private one while execute() runs)."""
    from runlink.airflow.injection.environment import original_conf_dir, read_properties

    conf_dir = original_conf_dir()
    if conf_dir is None:
        return {}
    defaults = read_properties(conf_dir / "spark-defaults.conf")
    return {k: v for k, v in defaults.items() if k in LIST_KEYS}


def local_driver_conf(raw: dict[str, str], user_conf: Mapping[str, Any] | None) -> dict[str, str]:
    """The user's conf plus the listener conf, for a command line that overrides spark-defaults.conf."""
    existing = {**_defaults_lists(), **{str(k): str(v) for k, v in (user_conf or {}).items() if v is not None}}
    return build_spark_conf(raw, existing=existing)


def _conf_from_string(text: str) -> dict[str, str] | None:
    """SparkSqlHook's string form: `k=v` items separated by commas (it splits on every comma)."""
    conf: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        if "=" not in item:
            return None
        key, _, value = item.partition("=")
        conf[key.strip()] = value.strip()
    return conf


def inject_spark_submit(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    from runlink.airflow.injection.environment import _context_env

    if not os.path.isfile(local_jar()):  # never name a listener class the driver could not load
        return
    undo.set_attr(task, "conf", local_driver_conf(raw, copied(getattr(task, "conf", None) or {})))
    env_vars = copied(getattr(task, "env_vars", None) or {})
    for name, value in _context_env(raw).items():
        env_vars.setdefault(name, value)
    undo.set_attr(task, "env_vars", env_vars)
    jars = getattr(task, "jars", None)
    if jars:
        undo.set_attr(task, "jars", append_list(jars, local_jar()))
    if getattr(task, "_hook", None) is not None:  # a hook built before us would not see the new conf
        undo.set_attr(task, "_hook", None)


def inject_spark_jdbc(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    """SparkJDBCOperator builds its hook from `_spark_conf` / `_spark_jars` (not SparkSubmitOperator's names)."""
    if not os.path.isfile(local_jar()):
        return
    user = getattr(task, "_spark_conf", None)
    if user is not None and not isinstance(user, Mapping):
        log.debug("runlink: %s._spark_conf is a %s, left alone", task.task_id, type(user).__name__)
        return
    undo.set_attr(task, "_spark_conf", local_driver_conf(raw, copied(user or {})))
    jars = getattr(task, "_spark_jars", None)
    if isinstance(jars, str) and jars:
        undo.set_attr(task, "_spark_jars", append_list(jars, local_jar()))
    if getattr(task, "_hook", None) is not None:
        undo.set_attr(task, "_hook", None)


def inject_spark_sql(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    if not os.path.isfile(local_jar()):
        return
    user = getattr(task, "_conf", None)
    if isinstance(user, str):
        parsed = _conf_from_string(user)
        if parsed is None:
            log.debug("runlink: %s conf %r is not k=v,k=v: left to spark-defaults.conf", task.task_id, user)
            return
        user = parsed
    elif user is not None and not isinstance(user, Mapping):
        return
    undo.set_attr(task, "_conf", local_driver_conf(raw, copied(user or {})))
    if getattr(task, "_hook", None) is not None:
        undo.set_attr(task, "_hook", None)


def inject_pyspark(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    config = getattr(task, "config_kwargs", None)
    if not isinstance(config, Mapping):
        return
    if any(str(config.get(k, "")).startswith("sc://") for k in ("spark.remote",)):
        log.debug("runlink: %s uses Spark Connect: the server's driver is not this task's", task.task_id)
        return
    user_lists = {k: str(v) for k, v in config.items() if k in LIST_KEYS}
    if not user_lists or not os.path.isfile(local_jar()):
        return  # nothing on the command line overrides runlink's spark-defaults.conf
    conf = local_driver_conf(raw, user_lists)
    updated = dict(copied(config))
    for key in user_lists:
        updated[key] = conf[key]
    undo.set_attr(task, "config_kwargs", updated)
