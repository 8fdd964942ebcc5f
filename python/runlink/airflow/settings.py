"""The Airflow side's own settings: instance uid, exclusions, opt-in captures, remote jar location.

Each setting is read from the environment first (`RUNLINK_AIRFLOW_*`, handy in containers), then from the
`[runlink]` section of airflow.cfg (or `AIRFLOW__RUNLINK__*`), then a default. Values are read once per process:
the listener calls these on every task and must stay cheap.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from runlink.airflow import identity
from runlink.config import ENV_ALIASES, env_value, parse_bool

#: setting -> (environment name, [runlink] option in airflow.cfg)
_NAMES: dict[str, tuple[str, str]] = {
    "uid": ("RUNLINK_AIRFLOW_UID", "uid"),
    "exclude_dags": ("RUNLINK_AIRFLOW_EXCLUDE_DAGS", "exclude_dags"),
    "exclude_tasks": ("RUNLINK_AIRFLOW_EXCLUDE_TASKS", "exclude_tasks"),
    "capture_source": ("RUNLINK_AIRFLOW_CAPTURE_SOURCE", "capture_source"),
    "capture_logs": ("RUNLINK_AIRFLOW_CAPTURE_LOGS", "capture_logs"),
    "capture_return_value": ("RUNLINK_AIRFLOW_CAPTURE_RETURN_VALUE", "capture_return_value"),
    "log_bytes": ("RUNLINK_AIRFLOW_LOG_BYTES", "log_bytes"),
    "inject": ("RUNLINK_AIRFLOW_INJECT", "inject"),
    "remote_jar": ("RUNLINK_AIRFLOW_REMOTE_JAR", "remote_jar"),
    "flush_timeout": ("RUNLINK_AIRFLOW_FLUSH_TIMEOUT", "flush_timeout"),
    "sql_statements": ("RUNLINK_AIRFLOW_SQL_STATEMENTS", "sql_statements"),
    "sql_strip_literals": ("RUNLINK_AIRFLOW_SQL_STRIP_LITERALS", "sql_strip_literals"),
    "sql_max_chars": ("RUNLINK_AIRFLOW_SQL_MAX_CHARS", "sql_max_chars"),
}


def _from_airflow_cfg(option: str) -> str | None:
    try:
        from airflow.configuration import conf

        if conf.has_option("runlink", option):
            value = conf.get("runlink", option)
            return value if value is None else str(value)
    except Exception:  # noqa: BLE001 - a broken airflow.cfg must not stop the task
        return None
    return None


def raw_setting(name: str, environ: os._Environ | dict | None = None) -> str | None:
    env_name, option = _NAMES[name]
    value = env_value(env_name, environ)  # or its Databand alias (config.ENV_ALIASES)
    if value is not None:
        return value
    value = _from_airflow_cfg(option)
    return value.strip() if value and value.strip() else None


def _globs(text: str | None) -> tuple[str, ...]:
    if not text:
        return ()
    return tuple(p.strip() for p in re.split(r"[,\s]+", text) if p.strip())


@dataclass(frozen=True)
class AirflowSettings:
    """What the plugin does; see README "Airflow" for every option."""

    #: None when no component of this process tree can tell (the tracker then places events by their DAG run)
    uid: str | None
    exclude_dags: tuple[str, ...] = ()
    #: `task_id` or `dag_id.task_id` globs
    exclude_tasks: tuple[str, ...] = ()
    capture_source: bool = False
    capture_logs: bool = False
    capture_return_value: bool = True
    log_bytes: int = 16384
    inject: bool = True
    remote_jar: str | None = None
    flush_timeout_s: float = 2.0
    #: record the statements SQL hooks run (airflow/sql/), their text cut at sql_max_chars, literals kept or not
    sql_statements: bool = True
    sql_strip_literals: bool = False
    sql_max_chars: int = 16384
    extra: dict = field(default_factory=dict)

    def dag_excluded(self, dag_id: str | None) -> bool:
        return bool(dag_id) and any(fnmatch.fnmatchcase(dag_id, p) for p in self.exclude_dags)

    def task_excluded(self, dag_id: str | None, task_id: str | None) -> bool:
        if self.dag_excluded(dag_id):
            return True
        if not task_id:
            return False
        full = f"{dag_id}.{task_id}"
        return any(fnmatch.fnmatchcase(task_id, p) or fnmatch.fnmatchcase(full, p) for p in self.exclude_tasks)


def instance_uid() -> str | None:
    """This Airflow deployment's uid as runlink reports it (Databand's `get_airflow_instance_uid()`): pinned by
    `[runlink] uid`, else derived so that every component agrees (see `runlink.airflow.identity`)."""
    return get_settings().uid


def _bool(name: str, default: bool) -> bool:
    try:
        return parse_bool(raw_setting(name), default)
    except ValueError:
        return default


def _number(name: str, default: float) -> float:
    try:
        value = raw_setting(name)
        return float(value) if value else default
    except ValueError:
        return default


def _load() -> AirflowSettings:
    return AirflowSettings(
        uid=identity.resolve(raw_setting("uid"))[0],
        exclude_dags=_globs(raw_setting("exclude_dags")),
        exclude_tasks=_globs(raw_setting("exclude_tasks")),
        capture_source=_bool("capture_source", False),
        capture_logs=_bool("capture_logs", False),
        capture_return_value=_bool("capture_return_value", True),
        log_bytes=int(_number("log_bytes", 16384)),
        inject=_bool("inject", True),
        remote_jar=raw_setting("remote_jar"),
        flush_timeout_s=_number("flush_timeout", 2.0),
        sql_statements=_bool("sql_statements", True),
        sql_strip_literals=_bool("sql_strip_literals", False),
        sql_max_chars=max(256, int(_number("sql_max_chars", 16384))),
    )


_CACHE: dict[tuple, AirflowSettings] = {}


#: the environment variables the settings depend on: `RUNLINK_AIRFLOW_*` and their `AIRFLOW__RUNLINK__*` twins
_ENV_NAMES = tuple(env for env, _ in _NAMES.values()) + tuple(
    alias for env, _ in _NAMES.values() for alias in ENV_ALIASES.get(env, ())) + tuple(
    f"AIRFLOW__RUNLINK__{option.upper()}" for _, option in _NAMES.values()) + (
    identity.INHERITED_ENV, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN")


def get_settings() -> AirflowSettings:
    """Settings of this process, recomputed only when one of their variables changes (tests do that).

    Called several times per task: the cache key is a handful of lookups, not a walk over the environment.
    """
    environ = os.environ
    key = tuple(environ.get(name) for name in _ENV_NAMES)
    settings = _CACHE.get(key)
    if settings is None:
        _CACHE.clear()
        settings = _CACHE[key] = _load()
    return settings


@functools.cache
def _truthy_markers() -> frozenset[str]:
    return frozenset({"false", "0", "no", "off"})


def opted_out(task: object) -> bool:
    """The task-level opt-out: `runlink_tracking=False` in the task's `params`, or the attribute on the operator.

    `params={"runlink_tracking": False}` works on every operator (and from `default_args`), without subclassing.
    """
    value: object = getattr(task, "runlink_tracking", None)
    if value is None:
        params = getattr(task, "params", None)
        try:
            value = params.get("runlink_tracking") if params is not None else None
        except Exception:  # noqa: BLE001
            value = None
    if value is None:
        return False
    if isinstance(value, str):
        return value.strip().lower() in _truthy_markers()
    return value is False


def matches_any(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)
