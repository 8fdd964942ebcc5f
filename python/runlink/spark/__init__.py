"""Spark, Python side: the conf that enables the JVM listeners, `track_session`, the PySpark query listener.

`import runlink.spark` does not import pyspark: Airflow workers build Spark conf without Spark installed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runlink.spark.conf import (
    QUERY_LISTENER,
    SPARK_LISTENER,
    ListenerJarMissing,
    conf,
    listener_jar,
)

__all__ = [
    "QUERY_LISTENER",
    "SPARK_LISTENER",
    "ListenerJarMissing",
    "conf",
    "listener_jar",
    "track_session",
]


def track_session(spark: Any, context: Mapping[str, object] | None = None) -> Any:
    """Attach tracking to a running SparkSession (classic or Spark Connect) and link the work it runs from here on
    to this Airflow task (see `runlink.spark.session.track_session`)."""
    from runlink.spark.session import track_session as _track

    return _track(spark, context)
