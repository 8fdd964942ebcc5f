"""Spark conf that turns tracking on: the listener jar, both JVM listeners, the Airflow context, the tracker.

Everything here is pure Python (no pyspark import): Airflow operators and the CLI call it where Spark is not
installed. The rule everywhere: never overwrite what the user set; list-valued keys are appended to.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from runlink import config as _config
from runlink.context import ENV_KEYS

SPARK_LISTENER = "dev.runlink.spark.RunlinkSparkListener"
QUERY_LISTENER = "dev.runlink.spark.RunlinkQueryListener"
STREAMING_LISTENER = "dev.runlink.spark.RunlinkStreamingListener"
JAR_NAME = "runlink-spark-listener.jar"

#: comma-separated keys runlink appends to (the user's entries stay first, nothing is duplicated)
LIST_KEYS = (
    "spark.jars",
    "spark.extraListeners",
    "spark.sql.queryExecutionListeners",
    "spark.sql.streaming.streamingQueryListeners",
    "spark.submit.pyFiles",
)
URL_KEY = "spark.runlink.url"
TOKEN_KEY = "spark.runlink.token"
TRACKING_KEY = "spark.runlink.tracking"


class ListenerJarMissing(FileNotFoundError):
    """The listener jar is not in the package: it is built from jvm-listener/, not checked in."""


def jars_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "jars"


def listener_jar() -> str:
    """Absolute path of the listener jar shipped inside the package.

    Raises ListenerJarMissing with the command that builds it: a source checkout has no jar until
    `scripts/build-jar.sh` (or `scripts/setup.sh`) ran.
    """
    override = os.environ.get("RUNLINK_LISTENER_JAR")
    if override:
        if not Path(override).is_file():
            raise ListenerJarMissing(f"RUNLINK_LISTENER_JAR={override} does not exist")
        return str(Path(override).resolve())
    path = jars_dir() / JAR_NAME
    if not path.is_file():
        raise ListenerJarMissing(
            f"the runlink Spark listener jar is missing: {path}. Build it with `bash scripts/build-jar.sh` "
            "from a runlink checkout (or install a runlink wheel, which contains it), or point "
            "RUNLINK_LISTENER_JAR at a built jar."
        )
    return str(path)


def driver_site_hook() -> str:
    """The sitecustomize.py that names a spark-submitted PySpark driver's work by its Python lines (see
    runlink/spark/capture_hook.py)."""
    return str(Path(__file__).resolve().parent / "driver_site" / "sitecustomize.py")


def split_list(value: object) -> list[str]:
    """The entries of a comma-separated Spark list value (None or blank entries: none)."""
    if value is None:
        return []
    return [part.strip() for part in str(value).split(",") if part.strip()]


def append_list(existing: object, item: str, same: Callable[[str, str], bool] | None = None) -> str:
    """`existing` (a comma-separated Spark list) with `item` appended unless already there.

    `same(a, b)` decides equality (jars compare by file name, so a jar given as a remote URI counts).
    """
    parts = split_list(existing)
    same = same or (lambda a, b: a == b)
    if not any(same(part, item) for part in parts):
        parts.append(item)
    return ",".join(parts)


def _jar_basename(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0]


def _same_jar(a: str, b: str) -> bool:
    return _jar_basename(a) == _jar_basename(b)


def _raw_context(context: Mapping[str, object] | None) -> dict[str, str]:
    """Accept a raw context (`dag_id`...) or `AIRFLOW_CTX_*` names; None means this process's environment."""
    from runlink.context import from_env

    if context is None:
        return from_env()
    raw: dict[str, str] = {}
    for key, value in context.items():
        if value is None or not str(value).strip():
            continue
        name = ENV_KEYS.get(key, key)  # AIRFLOW_CTX_DAG_ID -> dag_id; dag_id stays dag_id
        if name in ENV_KEYS.values():
            raw[name] = str(value).strip()
    return raw


def conf(
    context: Mapping[str, object] | None = None,
    existing: Mapping[str, object] | None = None,
    url: str | None = None,
    token: str | None = None,
    jar_uri: str | None = None,
    tracking: bool | None = None,
) -> dict[str, str]:
    """The Spark conf entries to apply on top of `existing` so that the application is tracked.

    - `spark.jars`, `spark.extraListeners`, `spark.sql.queryExecutionListeners`,
      `spark.sql.streaming.streamingQueryListeners`: the user's value with ours appended (never duplicated).
      `jar_uri` replaces the local jar path for remote clusters (s3://, gs://, dbfs:/ ...), where the driver
      cannot see this machine's files.
    - `spark.submit.pyFiles`: the user's value with runlink's driver hook appended (local drivers only, not with
      `jar_uri`): a `spark-submit app.py` driver then names its jobs, stages and queries by the user's Python
      lines without calling runlink (a `--py-files` argument replaces this conf: then Spark's own names stay).
      This process's own PySpark actions get the same (runlink/spark/capture_hook.py).
    - `spark.env.AIRFLOW_CTX_*` from `context` (raw keys or AIRFLOW_CTX_* names) or this process's environment.
    - `spark.runlink.url` and `spark.runlink.tracking` (explicit > environment > defaults).
    - `spark.runlink.token` only when `token` is passed explicitly: the token is a secret, and a driver on
      this machine reads RUNLINK_TOKEN / $RUNLINK_HOME/token itself. Spark's default `spark.redaction.regex`
      matches "token", so the UI and the event log redact it.

    A scalar key the user already set keeps the user's value (it is returned unchanged).
    """
    existing = {k: ("" if v is None else str(v)) for k, v in (existing or {}).items()}
    out: dict[str, str] = {}

    jar = jar_uri or listener_jar()
    out["spark.jars"] = append_list(existing.get("spark.jars"), jar, _same_jar)
    out["spark.extraListeners"] = append_list(existing.get("spark.extraListeners"), SPARK_LISTENER)
    out["spark.sql.queryExecutionListeners"] = append_list(
        existing.get("spark.sql.queryExecutionListeners"), QUERY_LISTENER
    )
    out["spark.sql.streaming.streamingQueryListeners"] = append_list(
        existing.get("spark.sql.streaming.streamingQueryListeners"), STREAMING_LISTENER
    )
    if jar_uri is None:
        out["spark.submit.pyFiles"] = append_list(existing.get("spark.submit.pyFiles"), driver_site_hook(), _same_jar)
        from runlink.spark.capture_hook import install_on_import

        install_on_import()

    env_names = {key: name for name, key in ENV_KEYS.items()}
    for key, value in _raw_context(context).items():
        out[f"spark.env.{env_names[key]}"] = value

    cfg = _config.load(url=url, tracking=tracking)
    out[URL_KEY] = cfg.url
    out[TRACKING_KEY] = "true" if cfg.tracking else "false"
    if token:
        out[TOKEN_KEY] = token

    for key in list(out):
        if key not in LIST_KEYS and existing.get(key, "").strip():
            out[key] = existing[key]
    return out


def is_tracking_conf(spark_conf: Mapping[str, str]) -> bool:
    """True when a conf already registers runlink's JVM listener (so nothing must be added at runtime)."""
    return SPARK_LISTENER in split_list(spark_conf.get("spark.extraListeners"))


def redact(conf_map: Mapping[str, str]) -> dict[str, str]:
    """A copy safe to print or log: the token value is masked."""
    return {k: ("*****" if k == TOKEN_KEY and v else v) for k, v in conf_map.items()}
