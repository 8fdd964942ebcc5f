"""SQL queries run from Python, with their Python call site, in real local SparkSessions reporting to a real
tracker: through the JVM query listener when the jar is on the driver (once per query), through the PySpark
QueryExecutionListener when it is not.

Proves where the Python call site comes from: Spark calls query listeners on its listener bus (py4j hands the
PySpark one to a callback thread), after the action, where the user's frame is gone; the wrappers capture it on
the calling thread and hand it to Spark as the call site.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import Any

import pytest
from chispa import assert_df_equality

from support.spark_runs import listener_jar_or_skip
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

APP_NAME = "runlink-pyspark-listener-test"


@pytest.fixture(scope="module")
def session(sqlite_tracker: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    listener_jar_or_skip()
    from runlink import delivery
    from runlink.spark.pytest_plugin import build_session

    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RUNLINK_URL", sqlite_tracker.url)
        mp.setenv("RUNLINK_TOKEN", sqlite_tracker.token)
        mp.setenv("RUNLINK_HOME", str(home))
        for name in list(os.environ):
            if name.startswith("AIRFLOW_CTX_"):
                mp.delenv(name)
        previous = delivery.set_client(None)  # this module's client: built from the env above
        spark = build_session(APP_NAME, url=sqlite_tracker.url)
        yield spark
        spark.stop()
        client = delivery.set_client(previous)
        if client is not None:
            client.close(5)


def _tracking(spark: Any) -> Any:
    from runlink.spark.session import tracked

    return tracked(spark.sparkContext.applicationId)


def _app_queries(tracker: Any, app_name: str, app_id: str, callsites: set[str]) -> list[dict]:
    """The app's queries, once every one of `callsites` is among them."""

    def fetch() -> list[dict] | None:
        for run in tracker.get_json("/api/v1/dag-runs", dag_id=f"spark:{app_name}")["items"]:
            tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
            for attempt in tree["task_attempts"]:
                for app in attempt["spark_apps"]:
                    if app["app_id"] == app_id and callsites <= {q["callsite"] for q in app["queries"]}:
                        return app["queries"]
        return None

    return wait_for(fetch, f"queries at {sorted(callsites)} of {app_id}", 90.0, interval_s=0.25)


def by_callsite(queries: list[dict]) -> dict[str, list[dict]]:
    by_site: dict[str, list[dict]] = {}
    for query in queries:
        by_site.setdefault(query["callsite"], []).append(query)
    return by_site


def script_sites(script: Path) -> dict[str, str]:
    """`# SITE:name` markers of a script (module level) -> `file:line <module>`, the call site runlink should
    report for that line."""
    return {line.split("# SITE:")[1].strip(): f"{script}:{number} <module>"
            for number, line in enumerate(script.read_text().splitlines(), start=1) if "# SITE:" in line}


def check_queries(queries: list[dict], path: str, where: dict[str, str]) -> None:
    """The ETL script's queries (see ETL_ACTIONS), each reported once at its line: rows, paths, the failure."""
    by_site = by_callsite(queries)

    (write,) = by_site[where["write"]]
    assert write["success"] and write["outputs"][0]["rows"] == 300
    assert write["outputs"][0]["path"].rstrip("/").endswith(path.rstrip("/").rsplit("/", 1)[1])
    assert write["outputs"][0]["format"] == "parquet"
    assert write["duration_ms"] > 0

    (collected,) = by_site[where["collect"]]
    assert collected["inputs"][0]["rows"] == 300 and collected["inputs"][0]["operation"] == "read"

    (counted,) = by_site[where["count"]]
    assert counted["action"] == "count" and counted["success"]

    (failed,) = by_site[where["fail"]]
    assert not failed["success"] and "runlink-test-boom" in failed["error"]["message"]


def _line() -> int:
    return sys._getframe(1).f_lineno


def test_callback_runs_off_the_calling_thread(session: Any) -> None:
    """Why the call site cannot be read at callback time: the user's frame is not on the callback's stack."""
    seen: list[tuple[str, list[str]]] = []

    class Probe:
        def onSuccess(self, funcName, qe, durationNs):  # noqa: N802,N803
            seen.append((threading.current_thread().name, [f.filename for f in traceback.extract_stack()]))

        def onFailure(self, funcName, qe, exception):  # noqa: N802,N803
            pass

        class Java:
            implements = ["org.apache.spark.sql.util.QueryExecutionListener"]

    from pyspark.java_gateway import ensure_callback_server_started

    ensure_callback_server_started(session.sparkContext._gateway)  # what a py4j listener needs
    probe = Probe()
    manager = session._jsparkSession.listenerManager()
    manager.register(probe)
    try:
        session.range(5).count()
        session.sparkContext._jsc.sc().listenerBus().waitUntilEmpty(30000)
        wait_for(lambda: seen, "the probe listener's callback", 30)
    finally:
        manager.unregister(probe)
    thread_name, files = seen[0]
    assert thread_name != threading.current_thread().name
    assert __file__ not in files[:-1]  # only the probe's own frame is from this file; no caller frame is


def test_sql_queries_with_python_callsite(session: Any, sqlite_tracker: Any, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    path = str(tmp_path / "people")
    people = session.createDataFrame([(i, f"p{i}", i % 3) for i in range(300)], ["id", "name", "team"])
    write_line = _line() + 1
    people.write.mode("overwrite").parquet(path)
    back = session.read.parquet(path)
    agg = back.groupBy("team").agg(F.count("*").alias("n"))
    collect_line = _line() + 1
    rows = agg.collect()
    count_line = _line() + 1
    assert back.count() == 300
    fail_line = _line() + 2
    with pytest.raises(Exception, match="runlink-test-boom"):
        session.range(3).selectExpr("assert_true(id < 0, 'runlink-test-boom')").collect()

    expected = session.createDataFrame([(0, 100), (1, 100), (2, 100)], ["team", "n"])
    assert_df_equality(session.createDataFrame(rows), expected, ignore_row_order=True, ignore_nullable=True)

    here = os.path.abspath(__file__)
    where = {name: f"{here}:{line} test_sql_queries_with_python_callsite" for name, line in
             (("write", write_line), ("collect", collect_line), ("count", count_line), ("fail", fail_line))}
    queries = _app_queries(sqlite_tracker, APP_NAME, session.sparkContext.applicationId, set(where.values()))
    # the jar is on this driver: the JVM query listener reports every query, once, with the Python line
    assert {q["listener"] for q in queries} == {"jvm"}
    assert not _tracking(session).pyspark_listener
    check_queries(queries, path, where)


def test_jobs_carry_the_python_callsite(session: Any) -> None:
    """The wrappers set Spark's callSite local properties, so Spark's own job list names the Python line."""
    line = _line() + 1
    session.range(10).toPandas()
    sc = session.sparkContext
    sc._jsc.sc().listenerBus().waitUntilEmpty(30000)
    store = sc._jsc.sc().statusStore()
    jobs = store.jobsList(None)
    names = [str(jobs.apply(i).name()) for i in range(jobs.size())]
    assert f"toPandas at {os.path.abspath(__file__)}:{line}" in names, names


def test_track_session_is_idempotent(session: Any) -> None:
    from runlink.spark import track_session

    first = _tracking(session)
    assert track_session(session) is first
    assert first.jvm_listener and first.jvm_query_listener and not first.pyspark_listener
    assert first.listener is None


SCRIPT_PYSPARK_LISTENER = """
import json, sys
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
import runlink.spark
path = sys.argv[1]
spark = (SparkSession.builder.master("local[2]").appName("runlink-pyspark-listener-nojar")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate())
t = runlink.spark.track_session(spark)
people = spark.createDataFrame([(i, f"p{i}", i % 3) for i in range(300)], ["id", "name", "team"])
people.write.mode("overwrite").parquet(path)  # SITE:write
back = spark.read.parquet(path)
rows = back.groupBy("team").agg(F.count("*").alias("n")).collect()  # SITE:collect
assert back.count() == 300  # SITE:count
try:
    spark.range(3).selectExpr("assert_true(id < 0, 'runlink-test-boom')").collect()  # SITE:fail
except Exception:
    pass
assert sorted(r["n"] for r in rows) == [100, 100, 100]
spark.range(1).select(F.lit("x" * 20000).alias("long_literal")).collect()  # SITE:wide
drained = t.listener.drain(60)
print("RESULT " + json.dumps({"jvm": t.jvm_listener, "jvmq": t.jvm_query_listener, "py": t.pyspark_listener,
                              "drained": drained, "app_id": spark.sparkContext.applicationId}))
spark.stop()
"""


def test_pyspark_listener_reports_queries_without_the_jar(sqlite_tracker: Any, tmp_path: Path) -> None:
    """No jar on the driver: the PySpark QueryExecutionListener (py4j callback) reports each query with its
    Python line, datasets and row counts, read off the plan through py4j."""
    script = tmp_path / "nojar_etl.py"
    script.write_text(SCRIPT_PYSPARK_LISTENER)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "PYSPARK_", "SPARK_"))}
    env.update(RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token, RUNLINK_HOME=str(tmp_path))
    path = str(tmp_path / "people")
    res = subprocess.run([sys.executable, str(script), path], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["py"] and result["drained"] and not result["jvm"] and not result["jvmq"]
    where = script_sites(script)
    queries = _app_queries(sqlite_tracker, "runlink-pyspark-listener-nojar", result["app_id"], set(where.values()))
    assert {q["listener"] for q in queries} == {"python"}
    check_queries(queries, path, where)
    (wide,) = [q for q in queries if q["callsite"] == where["wide"]]
    assert wide["plan_truncated"] and len(wide["plan_summary"]) == 16384  # the PySpark listener's plan cap


SCRIPT_NO_JAR = """
import json, logging
from pyspark.sql import SparkSession
import runlink.spark
spark = SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false").getOrCreate()
t = runlink.spark.track_session(spark)
spark.range(3).count()
print("RESULT " + json.dumps({"jvm": t.jvm_listener, "py": t.pyspark_listener, "messages": t.messages}))
spark.stop()
"""


def test_track_session_without_the_jar_explains(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "PYSPARK_"))}
    env.update(RUNLINK_URL="http://127.0.0.1:9", RUNLINK_HOME=str(tmp_path), RUNLINK_FLUSH_TIMEOUT="1")
    res = subprocess.run([sys.executable, "-c", SCRIPT_NO_JAR], capture_output=True, text=True, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["py"] is True and result["jvm"] is False
    assert any("not on this Spark driver's classpath" in m and "cannot reliably" in m for m in result["messages"])


SCRIPT_JAR_ONLY = """
import json, sys
from pyspark.sql import SparkSession
import runlink.spark
spark = (SparkSession.builder.master("local[1]").appName("runlink-late-attach")
         .config("spark.jars", runlink.spark.listener_jar()).config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "2").getOrCreate())
spark.range(3).count()  # before tracking: not seen by the JVM listener
t = runlink.spark.track_session(spark)
assert runlink.spark.track_session(spark) is t
spark.range(5).count()  # SITE:count
spark.range(40).selectExpr("id % 4 AS k").write.mode("overwrite").parquet(sys.argv[1])  # SITE:write
rows = spark.read.parquet(sys.argv[1]).groupBy("k").count().collect()  # SITE:collect
assert sorted(r["count"] for r in rows) == [10, 10, 10, 10]
print("RESULT " + json.dumps({"jvm": t.jvm_listener, "jvmq": t.jvm_query_listener, "py": t.pyspark_listener,
                              "messages": t.messages, "app_id": spark.sparkContext.applicationId}))
spark.stop()
"""


def test_track_session_registers_the_jvm_listeners_late(sqlite_tracker: Any, tmp_path: Path) -> None:
    """The jar is on the classpath but the listeners were not configured: track_session adds them via py4j.
    Every query after that is reported once, by the JVM, at its Python line: the query listener is told of an
    execution before the late-added Spark listener has seen its end, and its worker waits for that."""
    listener_jar_or_skip()
    script = tmp_path / "late_attach.py"
    script.write_text(SCRIPT_JAR_ONLY)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "PYSPARK_"))}
    env.update(RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token, RUNLINK_HOME=str(tmp_path))
    res = subprocess.run([sys.executable, str(script), str(tmp_path / "late_out")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])
    assert result["jvm"] and result["jvmq"] and not result["py"]
    assert any("events before this point" in m for m in result["messages"])
    where = script_sites(script)
    queries = _app_queries(sqlite_tracker, "runlink-late-attach", result["app_id"], set(where.values()))
    assert {q["listener"] for q in queries} == {"jvm"}  # one report per query
    by_site = by_callsite(queries)
    assert set(by_site) == set(where.values()), by_site.keys()  # every query has its line; none is missing one
    (counted,) = by_site[where["count"]]
    assert counted["action"] == "count" and counted["execution_id"] is not None
    (written,) = by_site[where["write"]]
    assert written["outputs"][0]["rows"] == 40 and written["outputs"][0]["format"] == "parquet"
    (collected,) = by_site[where["collect"]]
    assert collected["inputs"][0]["rows"] == 40

    def app() -> dict | None:
        for run in sqlite_tracker.get_json("/api/v1/dag-runs", dag_id="spark:runlink-late-attach")["items"]:
            for attempt in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for spark_app in attempt["spark_apps"]:
                    if spark_app["app_id"] == result["app_id"] and spark_app["jobs"]:
                        return spark_app
        return None

    wait_for(app, "the late-attached app's jobs", 60)


USER_TEST = """
def test_mine(runlink_spark):
    from runlink.spark.session import tracked
    assert runlink_spark.sparkContext.master == "local[2]"
    t = tracked(runlink_spark.sparkContext.applicationId)
    assert t.jvm_listener and t.jvm_query_listener
    assert runlink_spark.range(10).count() == 10
"""


def test_pytest_fixture_runlink_spark(sqlite_tracker: Any, tmp_path: Path) -> None:
    """A user's own test gets a tracked local session from the `runlink_spark` fixture (pytest11 plugin)."""
    listener_jar_or_skip()
    project = tmp_path / "userproject"
    project.mkdir()
    (project / "test_user.py").write_text(USER_TEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "PYSPARK_"))}
    env.update(RUNLINK_TOKEN=sqlite_tracker.token, RUNLINK_HOME=str(tmp_path / "home"))
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--runlink-url", sqlite_tracker.url,
         str(project)], capture_output=True, text=True, env=env, cwd=project, timeout=300,
    )
    assert res.returncode == 0, res.stdout[-4000:] + res.stderr[-2000:]
    assert "1 passed" in res.stdout

    def app_seen() -> bool:
        runs = sqlite_tracker.get_json("/api/v1/dag-runs", dag_id="spark:pytest:userproject")["items"]
        return bool(runs)

    wait_for(app_seen, "the fixture's app in the tracker", 60)
