"""pytest plugin (entry point `pytest11: runlink`): a tracked local SparkSession for your own pyspark tests.

    def test_my_job(runlink_spark):
        df = runlink_spark.range(10)
        ...

The session is `local[2]`, has runlink's listeners and jar (when the jar is built), and is stopped at the end
of the test session. Without an Airflow context the application is tracked as a run of its own. The tracker
is found like everywhere else (RUNLINK_URL, RUNLINK_TOKEN; `--runlink-url` overrides); tracking never fails
a test: a tracker that is down only costs the bounded flush at exit.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

log = logging.getLogger("runlink.spark")


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("runlink")
    group.addoption("--runlink-url", default=None, help="tracker URL for the runlink_spark fixture")
    group.addoption(
        "--runlink-spark-conf", action="append", default=[], metavar="KEY=VALUE",
        help="extra Spark conf for the runlink_spark session (repeatable)",
    )


def build_session(
    app_name: str = "pytest", url: str | None = None, extra: dict[str, str] | None = None
) -> Any:
    """A local[2] SparkSession with runlink's conf applied and tracking attached."""
    from pyspark.sql import SparkSession

    from runlink.spark.conf import ListenerJarMissing, conf
    from runlink.spark.session import track_session

    settings = {
        "spark.master": "local[2]",
        "spark.app.name": app_name,
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    settings.update(extra or {})
    try:
        settings.update(conf(existing=settings, url=url))
    except ListenerJarMissing as exc:  # Python-side tracking still works
        log.warning("runlink_spark: %s; only the PySpark query listener is attached", exc)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    track_session(spark)
    return spark


@pytest.fixture(scope="session")
def runlink_spark(request: pytest.FixtureRequest) -> Iterator[Any]:
    """A tracked local[2] SparkSession, shared by the test session and stopped at its end."""
    extra = {}
    for item in request.config.getoption("runlink_spark_conf") or []:
        key, _, value = item.partition("=")
        extra[key.strip()] = value
    spark = build_session(
        app_name=f"pytest:{request.config.rootpath.name}",
        url=request.config.getoption("runlink_url"),
        extra=extra,
    )
    try:
        yield spark
    finally:
        from runlink.spark.session import tracked

        tracking = tracked(spark.sparkContext.applicationId)
        if tracking is not None and tracking.listener is not None:
            tracking.listener.drain(5.0)
        spark.stop()
