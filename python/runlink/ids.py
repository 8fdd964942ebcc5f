"""Deterministic ids (uuid5), computed the same way in Python and in the JVM listener.

`tests/vectors/ids.json` holds the shared vectors; `dev.runlink.spark.context.Ids` must agree.
"""

from __future__ import annotations

import uuid

from runlink.context import NormalizedContext

#: uuid5(NAMESPACE_URL, "https://runlink.dev/ns/v1")
NAMESPACE = uuid.UUID("bfa3c501-3bee-5b2e-b83c-f90d5f0f46b6")


def _uuid5(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def context_id(ctx: NormalizedContext) -> str:
    """One id per distinct normalized context: the tracker keys its context table on it."""
    return _uuid5("ctx:" + ctx.key())


def spark_app_id(app_id: str, attempt_id: str | None = None) -> str:
    """The tracker's id of a Spark application (attempt)."""
    return _uuid5("spark-app:" + app_id + "|" + (attempt_id or ""))


def event_id(source_id: str, kind: str, discriminator: str) -> str:
    """An event id that a re-send of the same fact reproduces (so replays dedupe)."""
    return _uuid5("event:" + source_id + "|" + kind + "|" + discriminator)


def random_event_id() -> str:
    return str(uuid.uuid4())
