"""The Airflow context a task sets on the Spark work it causes on a shared application.

A Spark Connect server or a long-running cluster is started once, with no Airflow context; several tasks use it.
Each task writes its raw context into `spark.runlink.context`, which Spark hands to every job it runs for the task
(a local property, or Spark Connect's session conf that SQL executions propagate); the JVM listener sends it with
the job's, its stages' and its query's events (`dev.runlink.spark.context.WorkContext` reads it). The form is
`dag_id=etl&task_id=load&try_number=1`, each value percent-encoded: small, no commas, only the raw context keys,
never a secret.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote

from runlink.context import RAW_KEYS

PROPERTY = "spark.runlink.context"


def encode(raw: Mapping[str, object]) -> str | None:
    """The property value of a raw context; None without a dag_id (nothing to link to)."""
    values = {k: str(raw[k]).strip() for k in RAW_KEYS if raw.get(k) is not None and str(raw[k]).strip()}
    if "dag_id" not in values:
        return None
    return "&".join(f"{key}={quote(value, safe='')}" for key, value in values.items())
