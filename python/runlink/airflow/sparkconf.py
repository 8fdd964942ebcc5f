"""Spark conf for drivers launched by Airflow tasks, on top of `runlink.spark.conf()`.

The Spark part owns the conf itself (`runlink.spark.conf(context=..., existing=...)`); this module adds what only
the Airflow side knows: the remote jar location for drivers on EMR / Dataproc / Databricks, and a merge that never
overwrites the user's values. The listener names, the list keys and `append_list` are the Spark part's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runlink.context import to_env
from runlink.spark.conf import JAR_NAME, LIST_KEYS, ListenerJarMissing, append_list, jars_dir, listener_jar


def local_jar() -> str:
    """The listener jar on this machine, or where it would be when not built (callers check that it exists)."""
    try:
        return listener_jar()
    except ListenerJarMissing:
        return str(jars_dir() / JAR_NAME)


def build_spark_conf(
    raw: Mapping[str, str],
    existing: Mapping[str, Any] | None = None,
    remote_jar: str | None = None,
    token: str | None = None,
) -> dict[str, str]:
    """`existing` plus the listener conf for context `raw` (from `runlink.spark.conf`): user values win, list
    keys are appended to. `token` is passed only for remote drivers, which cannot read this machine's token."""
    from runlink.spark import conf as spark_part_conf

    merged = {str(k): str(v) for k, v in (existing or {}).items() if v is not None}
    merged.update(spark_part_conf(context=dict(raw), existing=merged, jar_uri=remote_jar, token=token))
    return merged


def conf_args(conf: Mapping[str, str]) -> list[str]:
    """`--conf k=v` arguments for spark-submit, in a stable order."""
    args: list[str] = []
    for key in sorted(conf):
        args += ["--conf", f"{key}={conf[key]}"]
    return args


def remote_spark_conf(
    raw: Mapping[str, str], existing: Mapping[str, Any] | None, remote_jar: str | None
) -> dict[str, str]:
    """Conf for a driver on a remote cluster (EMR, Dataproc, Databricks).

    With a remote jar location (`[runlink] remote_jar`, a URI the cluster can read) this is the full listener
    conf with the jar replaced by that URI. Without one, only the context and tracker keys are added: naming a
    listener class the cluster cannot load would stop the SparkContext, and runlink never breaks a job.
    """
    from runlink.config import load

    config = load()
    if remote_jar:
        return build_spark_conf(raw, existing=existing, remote_jar=remote_jar, token=config.token)
    conf = {str(k): str(v) for k, v in (existing or {}).items()}
    for name, value in to_env(raw).items():
        conf.setdefault(f"spark.env.{name}", value)
    conf.setdefault("spark.runlink.url", config.url)
    if config.token:
        conf.setdefault("spark.runlink.token", config.token)
    return conf


def parse_conf_args(args: list[str]) -> dict[str, str]:
    """The `--conf k=v` / `--conf=k=v` values of a spark-submit argument list."""
    found: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = str(args[i])
        value = None
        if arg in ("--conf", "-c") and i + 1 < len(args):
            value = str(args[i + 1])
            i += 1
        elif arg.startswith("--conf="):
            value = arg[len("--conf="):]
        if value and "=" in value:
            key, _, val = value.partition("=")
            found[key.strip()] = val
        i += 1
    return found


def inject_submit_args(args: list[str], conf: Mapping[str, str], jar: str | None) -> list[str]:
    """spark-submit `args` (starting after the `spark-submit` word) with runlink's conf added.

    User `--conf` values are kept, except list keys, which are rewritten to their appended value; `--jars`, when
    present, gets the listener jar appended (it replaces `spark.jars`). New `--conf` go first, so they stay
    before the application and its arguments.
    """
    user = parse_conf_args(args)
    out: list[str] = []
    i = 0
    app_started = False
    while i < len(args):
        arg = str(args[i])
        if not app_started and arg in ("--conf", "-c") and i + 1 < len(args) and "=" in str(args[i + 1]):
            key = str(args[i + 1]).partition("=")[0].strip()
            out += [arg, f"{key}={conf[key]}" if key in LIST_KEYS and key in conf else str(args[i + 1])]
            i += 2
            continue
        if not app_started and arg == "--jars" and i + 1 < len(args) and jar:
            out += [arg, append_list(str(args[i + 1]), jar)]
            i += 2
            continue
        if not app_started and not arg.startswith("-") and (i == 0 or not str(args[i - 1]).startswith("--")):
            app_started = True
        out.append(arg)
        i += 1
    added: list[str] = []
    for key in sorted(conf):
        if key not in user:
            added += ["--conf", f"{key}={conf[key]}"]
    return added + out
