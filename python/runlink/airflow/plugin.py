"""The Airflow plugin (entry point `airflow.plugins`): the listener, the Jinja macros, `/runlink/instance` and the
"runlink" extra link on every task instance (`runlink.airflow.extra_link`).

Macros, for templated fields of any operator (same content as the Python helpers):
`{{ macros.runlink.context_env(ti) }}` (a dict), `{{ macros.runlink.spark_conf(ti) }}` (a dict),
`{{ macros.runlink.spark_conf_args(ti) }}` (`--conf k=v ...` as one string, for a command line).
"""

from __future__ import annotations

import shlex
from typing import Any

from airflow.plugins_manager import AirflowPlugin

import airflow
from runlink.airflow import instance_endpoint
from runlink.airflow.extra_link import RunlinkAttemptLink
from runlink.airflow.listener import listener

_AIRFLOW_3 = int(airflow.__version__.split(".")[0]) >= 3


def context_env(ti: Any) -> dict[str, str]:
    """AIRFLOW_CTX_* and the tracker settings for a child process of the task `ti`."""
    from runlink.airflow.task_context import context_env as _context_env

    return _context_env(ti)


def spark_conf(ti: Any) -> dict[str, str]:
    """The listener conf (jar, listeners, spark.env.* context, tracker) for a driver started by `ti`."""
    from runlink.airflow.task_context import spark_conf as _spark_conf

    return _spark_conf(ti)


def spark_conf_args(ti: Any) -> str:
    """`spark_conf(ti)` as spark-submit arguments, shell-quoted."""
    from runlink.airflow.sparkconf import conf_args

    return " ".join(shlex.quote(a) for a in conf_args(spark_conf(ti)))


class RunlinkPlugin(AirflowPlugin):
    """Registers runlink with Airflow: no DAG changes needed."""

    name = "runlink"
    listeners = [listener]
    macros = [context_env, spark_conf, spark_conf_args]
    global_operator_extra_links = [RunlinkAttemptLink()]
    if _AIRFLOW_3:
        fastapi_apps = [{"app": instance_endpoint.fastapi_app(), "url_prefix": "/runlink", "name": "runlink"}]
    else:
        flask_blueprints = [instance_endpoint.flask_blueprint()]
