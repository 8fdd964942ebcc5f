"""apache-airflow-providers-apache-livy: LivyOperator (a Livy batch).

The driver runs on the cluster behind Livy, so this is the remote conf: the batch `conf` gets the context
(`spark.env.*`) and the tracker settings; with `[runlink] remote_jar` (an hdfs:// / s3:// copy of the listener
jar) also the listeners, and the jar goes to the batch's `jars` (Livy's `jars` becomes `spark.jars`). User keys
are kept, list keys appended to. Parameters that are not a dict yet (an unrendered template) are left alone.
"""

from __future__ import annotations

import logging
from typing import Any

from runlink.airflow.injection.base import Undo, copied
from runlink.airflow.sparkconf import remote_spark_conf
from runlink.spark.conf import LIST_KEYS

log = logging.getLogger("runlink.airflow")


def inject_batch_params(params: dict[str, Any], raw: dict[str, str], remote_jar: str | None) -> dict[str, Any]:
    """LivyOperator.spark_params (already copied) with runlink's conf and jar."""
    user = params.get("conf")
    user = dict(user) if isinstance(user, dict) else {}
    conf = remote_spark_conf(raw, user, remote_jar)
    if remote_jar:
        jars = list(params.get("jars") or [])
        if remote_jar not in jars:
            jars.append(remote_jar)
        params["jars"] = jars
        if "spark.jars" not in user:
            conf.pop("spark.jars", None)  # Livy turns `jars` into spark.jars: the listener jar is there
    params["conf"] = {k: v for k, v in conf.items() if k not in LIST_KEYS or v}
    return params


def inject_livy(task: Any, raw: dict[str, str], settings: Any, undo: Undo) -> None:
    params = getattr(task, "spark_params", None)
    if not isinstance(params, dict) or not isinstance(params.get("conf") or {}, dict):
        log.debug("runlink: %s.spark_params is not a dict of parameters, left alone", task.task_id)
        return
    undo.set_attr(task, "spark_params", inject_batch_params(copied(params), raw, settings.remote_jar))
