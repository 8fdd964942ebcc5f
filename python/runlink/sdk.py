"""The user-facing SDK: `log_metric`, `log_metrics`, `log_dataframe`, usable in any process with the context.

`log_metric` is on users' hot paths, so in the caller's thread it only builds a small tuple and appends
it to the client's bounded queue (the sender thread adds id, time text and source, and validates). The
Airflow context comes from `AIRFLOW_CTX_*` and is cached until those variables change. pandas and pyspark
are imported lazily: they are never needed to import runlink or to log a metric.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Mapping
from typing import Any

from runlink import delivery
from runlink.context import ENV_KEYS, from_env
from runlink.masking import mask_metric, mask_value
from runlink.span_context import current_span

log = logging.getLogger("runlink")

#: schema caps: the protocol's schema_field maxLengths (a longer name or type makes the whole event invalid, and the
#: client drops invalid events), and the number of fields the tracker keeps (tracker/security.py). Cut, flagged.
MAX_SCHEMA_FIELDS = 1000
MAX_FIELD_NAME_CHARS = 1000
MAX_FIELD_TYPE_CHARS = 4000

_ENV_NAMES = tuple(ENV_KEYS)
_ENV_NAMES_BYTES = tuple(name.encode() for name in _ENV_NAMES)
_ctx_fingerprint: tuple[Any, ...] | None = None
_ctx_cache: dict[str, str] | None = None


def _fingerprint() -> tuple[Any, ...]:
    data = getattr(os.environ, "_data", None)  # POSIX: bytes -> bytes; a fast, read-only peek
    if os.name == "posix" and isinstance(data, dict):
        get = data.get
        return tuple(get(name) for name in _ENV_NAMES_BYTES)
    environ = os.environ
    return tuple(environ.get(name) for name in _ENV_NAMES)


def current_context() -> dict[str, str] | None:
    """This process's raw Airflow context (None when there is none), re-read only when AIRFLOW_CTX_* change."""
    global _ctx_fingerprint, _ctx_cache
    fingerprint = _fingerprint()
    if fingerprint != _ctx_fingerprint:
        _ctx_cache = from_env() or None
        _ctx_fingerprint = fingerprint
    return _ctx_cache


def log_metric(key: str, value: Any) -> None:
    """Report one user metric under the current task attempt. Never raises, never blocks."""
    try:
        client = delivery._client or delivery.get_client()
        if client.tracking:
            key, value = mask_metric(key, value)
            span = current_span.get()
            if span is None:
                client.emit_lazy("metric", {"key": key, "value": value}, time.time(), current_context())
            else:  # inside a tracked function: the metric is the span's (and its run's, outside Airflow)
                client.emit_lazy("metric", {"key": key, "value": value, "span_id": span.span_id}, time.time(),
                                 span.context)
    except Exception:  # never hurt the job
        pass


def log_metrics(metrics: Mapping[str, Any]) -> None:
    """Report several metrics at once (same time stamp)."""
    try:
        client = delivery._client or delivery.get_client()
        if not client.tracking:
            return
        now = time.time()
        span = current_span.get()
        context = current_context() if span is None else span.context
        extra = {} if span is None else {"span_id": span.span_id}
        for key, value in dict(metrics).items():
            key, value = mask_metric(key, value)
            client.emit_lazy("metric", {"key": key, "value": value, **extra}, now, context)
    except Exception:
        pass


def log_dataframe(
    name: str,
    df: Any,
    operation: str = "read",
    path: str | None = None,
    table: str | None = None,
    with_stats: bool = False,
    with_schema: bool = True,
) -> None:
    """Report a dataset operation for a pandas or Spark DataFrame: schema, row count, optional column stats.

    Spark DataFrames are measured by Spark itself in one aggregation (row count and stats together), and the
    event carries the Spark application id so the dataset also shows under the Spark app. Never raises:
    a failure to measure is logged and the job goes on.
    """
    try:
        client, payload, spark_ref = measure_dataframe(df, with_stats, with_schema)
        if not payload or not client.tracking:
            return
        if operation not in ("read", "write", "unknown"):
            operation = "unknown"
        span = current_span.get()
        context = current_context() if span is None else span.context
        if spark_ref is not None and context is None:  # an Airflow context passed as `spark.env.AIRFLOW_CTX_*`
            context = spark_ref.pop("context", None)
        if spark_ref is not None:
            spark_ref.pop("context", None)
        payload.update({"name": str(name), "operation": operation, "path": path, "table": table})
        if span is not None:
            payload["span_id"] = span.span_id
        payload = mask_value(payload)  # dataset paths can hold credentials (s3a://KEY:SECRET@bucket/...)
        client.emit_lazy("dataset", payload, time.time(), context, spark_ref or None)
    except Exception as exc:
        log.warning("runlink.log_dataframe(%r) failed: %s", name, exc)


def measure_dataframe(df: Any, with_stats: bool, with_schema: bool
                      ) -> tuple[Any, dict[str, Any], dict[str, Any] | None]:
    """(the client to report with, the dataset payload measured from a pandas or Spark DataFrame, the Spark ref).

    The payload is empty for anything else (logged). A Spark app's conf may name its tracker (spark.runlink.*):
    its dataset goes where its listeners report; its ref holds the app id, and `context` when the app's conf
    carries an Airflow context (`spark.env.AIRFLOW_CTX_*`), for the caller to take out.
    """
    spark = is_spark_dataframe(df)
    if not spark and not _is_pandas_dataframe(df):
        log.warning("runlink: %s is neither a pandas nor a Spark DataFrame", type(df).__name__)
        return delivery._client or delivery.get_client(), {}, None
    app_id, spark_conf = _spark_session(df) if spark else (None, {})
    if spark_conf:
        from runlink.spark.session import client_for

        client = client_for(spark_conf)
    else:
        client = delivery._client or delivery.get_client()
    if not client.tracking:
        return client, {}, None
    if not spark:
        return client, _pandas_dataset(df, with_stats, with_schema), None
    ref: dict[str, Any] = {"app_id": str(app_id)} if app_id else {}
    env = {name: spark_conf[f"spark.env.{name}"] for name in _ENV_NAMES if f"spark.env.{name}" in spark_conf}
    if from_env(env):
        ref["context"] = from_env(env)
    return client, _spark_dataset(df, with_stats, with_schema), ref


def _capped_schema(fields: Iterable[tuple[Any, Any, bool | None]]) -> tuple[list[dict[str, Any]], bool]:
    """At most MAX_SCHEMA_FIELDS fields, names and type strings cut to the protocol's lengths; True when anything
    was cut. Why: one oversized type string (a deeply nested struct) must not make the whole event invalid."""
    schema: list[dict[str, Any]] = []
    truncated = False
    for name, type_, nullable in fields:
        if len(schema) >= MAX_SCHEMA_FIELDS:
            truncated = True
            break
        name, type_ = str(name), str(type_)
        if len(name) > MAX_FIELD_NAME_CHARS or len(type_) > MAX_FIELD_TYPE_CHARS:
            truncated = True
            name, type_ = name[:MAX_FIELD_NAME_CHARS], type_[:MAX_FIELD_TYPE_CHARS]
        schema.append({"name": name, "type": type_, "nullable": nullable})
    return schema, truncated


# -- pandas ------------------------------------------------------------------------------------------


def _is_pandas_dataframe(df: Any) -> bool:
    module = type(df).__module__ or ""
    if not module.startswith("pandas"):
        return False
    import pandas

    return isinstance(df, pandas.DataFrame)


def _plain(value: Any) -> Any:
    """A JSON-ready scalar (numpy -> Python; NaN/NaT -> None)."""
    if value is None:
        return None
    item = getattr(value, "item", None)
    if callable(item):
        try:
            value = item()
        except Exception:
            pass
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    try:
        import pandas

        if pandas.isna(value):
            return None
    except Exception:
        pass
    return str(value)


def _pandas_dataset(df: Any, with_stats: bool, with_schema: bool) -> dict[str, Any]:
    import pandas.api.types as ptypes

    payload: dict[str, Any] = {"rows": int(len(df)), "format": "pandas"}
    if with_schema:
        payload["schema"], payload["schema_truncated"] = _capped_schema(
            (col, dtype, True) for col, dtype in df.dtypes.items())
    try:
        payload["bytes"] = int(df.memory_usage(deep=False).sum())
    except Exception:
        pass
    if with_stats:
        stats: dict[str, dict[str, Any]] = {}
        for col in list(df.columns)[:MAX_SCHEMA_FIELDS]:  # the tracker keeps no more
            series = df[col]
            entry: dict[str, Any] = {
                "null_count": int(series.isna().sum()),
                "distinct_count": int(series.nunique(dropna=True)),
            }
            if ptypes.is_numeric_dtype(series) and not ptypes.is_bool_dtype(series):
                entry["min"] = _plain(series.min())
                entry["max"] = _plain(series.max())
                entry["mean"] = _plain(series.mean())
            stats[str(col)] = entry
        payload["column_stats"] = stats
    return payload


# -- Spark -------------------------------------------------------------------------------------------


def is_spark_dataframe(df: Any) -> bool:
    module = type(df).__module__ or ""
    return module.startswith("pyspark.sql") and type(df).__name__ == "DataFrame"


_NUMERIC_SPARK = ("ByteType", "ShortType", "IntegerType", "LongType", "FloatType", "DoubleType", "DecimalType")


def _spark_dataset(df: Any, with_stats: bool, with_schema: bool) -> dict[str, Any]:
    from pyspark.sql import functions as F

    all_fields = list(df.schema.fields)
    fields = all_fields[:MAX_SCHEMA_FIELDS]  # stats too: the tracker keeps no more columns than this
    payload: dict[str, Any] = {"format": "spark"}
    if with_schema:
        payload["schema"], payload["schema_truncated"] = _capped_schema(
            (f.name, f.dataType.simpleString(), bool(f.nullable)) for f in all_fields)
    aggs = [F.count(F.lit(1)).alias("__rows")]
    numeric: set[str] = set()
    if with_stats:
        for i, f in enumerate(fields):
            col = F.col(f"`{f.name}`")
            aggs.append(F.sum(F.when(col.isNull(), 1).otherwise(0)).alias(f"n{i}"))
            aggs.append(F.countDistinct(col).alias(f"d{i}"))
            if type(f.dataType).__name__ in _NUMERIC_SPARK:
                numeric.add(f.name)
                aggs += [F.min(col).alias(f"lo{i}"), F.max(col).alias(f"hi{i}"), F.mean(col).alias(f"mu{i}")]
    row = df.agg(*aggs).collect()[0].asDict()  # one Spark job for the row count and every statistic
    payload["rows"] = int(row["__rows"])
    if with_stats:
        stats = {}
        for i, f in enumerate(fields):
            entry = {"null_count": int(row[f"n{i}"] or 0), "distinct_count": int(row[f"d{i}"] or 0)}
            if f.name in numeric:
                entry.update(min=_plain(row[f"lo{i}"]), max=_plain(row[f"hi{i}"]), mean=_plain(row[f"mu{i}"]))
            stats[f.name] = entry
        payload["column_stats"] = stats
    return payload


def _spark_session(df: Any) -> tuple[str | None, dict[str, str]]:
    """The id of the Spark app the DataFrame belongs to, and the app's conf."""
    session = df.sparkSession
    try:
        sc = session.sparkContext
        return sc.applicationId, dict(sc.getConf().getAll())
    except Exception:  # Spark Connect has no SparkContext
        try:
            return session.conf.get("spark.app.id", None), {}
        except Exception:
            return None, {}
