"""Structured Streaming under its task: a real `spark-submit` (local[1]) of three streaming queries, reported by
RunlinkStreamingListener to a real tracker over HTTP and shown under the Airflow task attempt that launched them:
an availableNow incremental load (totals at its end, inside one interval), a rate query stopped after N batches,
a failing query with its exception. The tree API, the attempt page and `runlink runs show` each show them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runlink.protocol import make_event
from runlink.spark.conf import STREAMING_LISTENER, conf
from support.spark_connect import spark_connect_server
from support.spark_runs import clean_env, listener_jar_or_skip, runlink_spark_conf, spark_submit
from support.ui_pages import ui_page
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(300)]

APP = "streaming_app.py"
RUN_ID = "manual__2026-12-03T08:00:00+00:00"


def test_the_listener_is_appended_to_the_users_list() -> None:
    listener_jar_or_skip()
    key = "spark.sql.streaming.streamingQueryListeners"
    assert conf(existing={})[key] == STREAMING_LISTENER
    out = conf(existing={key: f"com.acme.L,{STREAMING_LISTENER}"})
    assert out[key] == f"com.acme.L,{STREAMING_LISTENER}"  # the user's first, ours not duplicated


def _stream_events(app_id: str, dag_id: str) -> list[dict]:
    """A query run as the JVM reports it: start, two intervals, an end with an empty last interval and a failure."""
    context = {"dag_id": dag_id, "task_id": "load", "dag_run_id": RUN_ID, "try_number": "1"}
    ref = {"app_id": app_id, "attempt_id": None}
    ids = {"query_id": "q-1", "run_id": "r-1", "name": "orders"}

    def figures(batches: int, total: int, rate: float | None, end: str) -> dict:
        return {**ids, "interval_end": end, "batches": batches, "input_rows": batches * 10,
                "input_rows_per_s": rate, "processed_rows_per_s": rate, "total_batches": total,
                "total_input_rows": total * 10, "total_batch_ms": total * 100, "max_batch_ms": 100,
                "latest_batch_id": total - 1, "sources": ["RateStreamV2"], "sink": "MemorySink"}

    def event(type_: str, payload: dict, time: str) -> dict:
        return make_event(f"spark_streaming_query.{type_}", payload, context=context, spark=ref, agent="jvm",
                          time=time)

    return [event("start", ids, "2026-12-03T08:00:00Z"),
            event("progress", figures(30, 30, 10.0, "2026-12-03T08:00:30Z"), "2026-12-03T08:00:30Z"),
            event("progress", figures(30, 60, 12.5, "2026-12-03T08:01:00Z"), "2026-12-03T08:01:00Z"),
            event("end", {**figures(0, 60, None, "2026-12-03T08:01:05Z"), "success": False,
                          "error": {"type": "java.lang.IllegalStateException", "message": "boom"}},
                  "2026-12-03T08:01:05Z")]


def test_any_arrival_order_and_a_replay_give_the_same_row(sqlite_tracker: Any, unique: str) -> None:
    """Totals are cumulative, rates come from the last interval that had batches, the end's state wins."""
    rows = []
    for order in ("in_order", "reversed"):
        dag_id = f"stream_order_{order}_{unique}"
        events = _stream_events(f"local-{order}-{unique}", dag_id)
        batches = [[e] for e in (events if order == "in_order" else events[::-1])]
        for batch in [*batches, *batches]:  # every event twice: the replay changes nothing
            assert sqlite_tracker.post_events(batch).status_code == 202
        run = sqlite_tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"][0]
        (attempt,) = sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]
        (row,) = [q for app in attempt["spark_apps"] for q in app["streaming"]]
        row.pop("context_id")  # each order ran under a DAG of its own
        rows.append(row)
    assert rows[0] == rows[1]
    row = rows[0]
    assert (row["state"], row["total_batches"], row["total_input_rows"], row["latest_batch_id"]) == (
        "failed", 60, 600, 59)
    assert row["input_rows_per_s"] == 12.5 and row["error"]["message"] == "boom"
    assert row["start_time"].startswith("2026-12-03T08:00:00") and row["end_time"].startswith("2026-12-03T08:01:05")


def _attempt(tracker: Any, dag_id: str) -> dict | None:
    """The attempt once its app holds all three queries, ended."""
    for run in tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]:
        for attempt in tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
            streams = [q for app in attempt["spark_apps"] for q in app.get("streaming", [])]
            if len(streams) == 3 and all(q["end_time"] for q in streams):
                return attempt
    return None


def test_streaming_queries_under_their_task_attempt(sqlite_tracker: Any, tmp_path: Path, unique: str) -> None:
    listener_jar_or_skip()
    tracker = sqlite_tracker
    dag_id = f"e2e_stream_{unique}"
    ctx = {"AIRFLOW_CTX_DAG_ID": dag_id, "AIRFLOW_CTX_TASK_ID": "load", "AIRFLOW_CTX_DAG_RUN_ID": RUN_ID,
           "AIRFLOW_CTX_TRY_NUMBER": "1"}
    home = tmp_path / "home"
    conf_args = runlink_spark_conf(clean_env(home), "--url", tracker.url)
    assert f"spark.sql.streaming.streamingQueryListeners={STREAMING_LISTENER}" in conf_args
    conf_args += ["--master", "local[1]", "--conf", "spark.sql.shuffle.partitions=1",
                  "--conf", "spark.runlink.streaming.intervalSeconds=1"]
    env = clean_env(home, RUNLINK_TOKEN=tracker.token, **ctx)
    submitted = spark_submit(APP, tmp_path / "out", conf_args, env)
    assert submitted.returncode == 0, submitted.log[-6000:]
    spark = json.loads((submitted.out / "streams.json").read_text())["queries"]

    attempt = wait_for(lambda: _attempt(tracker, dag_id), f"three ended streaming queries under {dag_id}",
                       90.0, interval_s=0.25)
    assert attempt["task_id"] == "load" and attempt["try_number"] == 1
    ours = {q["name"]: q for app in attempt["spark_apps"] for q in app["streaming"]}
    assert set(ours) == {"incremental_load", "rate_to_memory", "failing_query"}
    for name, q in ours.items():
        assert (q["query_id"], q["run_id"]) == (spark[name]["id"], spark[name]["run_id"]), name

    load = ours["incremental_load"]
    assert load["state"] == "succeeded"
    assert (load["total_batches"], load["total_input_rows"]) == (3, 30) == (spark["incremental_load"]["batches"],
                                                                           spark["incremental_load"]["input_rows"])
    assert load["latest_batch_id"] == 2 and load["processed_rows_per_s"] > 0
    assert "FileStreamSource" in load["sources"][0] and load["sink"].startswith("FileSink")

    rate = ours["rate_to_memory"]
    assert rate["state"] == "succeeded" and rate["error"] is None
    assert rate["total_batches"] == spark["rate_to_memory"]["batches"] >= 4
    assert rate["latest_batch_id"] == spark["rate_to_memory"]["latest_batch_id"]
    assert rate["total_input_rows"] == spark["rate_to_memory"]["input_rows"]
    assert rate["max_batch_ms"] > 0 and rate["total_batch_ms"] >= rate["max_batch_ms"]
    assert rate["input_rows_per_s"] is not None and rate["processed_rows_per_s"] is not None

    failing = ours["failing_query"]
    assert failing["state"] == "failed"
    assert "runlink-stream-boom" in failing["error"]["message"] + (failing["error"]["traceback"] or "")
    assert spark["failing_query"]["error"] and "runlink-stream-boom" in spark["failing_query"]["error"]

    # the attempt page's table and the CLI's tree name each query with its state
    html = ui_page(tracker, f"/ui/task-attempts/{attempt['id']}")
    table = html.split('id="streaming-queries"', 1)[1].split("</table>", 1)[0]
    for name in ours:
        assert name in table
    assert "runlink-stream-boom" in table
    shown = subprocess.run([sys.executable, "-m", "runlink", "runs", "show", dag_id, RUN_ID, "--url", tracker.url],
                           capture_output=True, text=True, timeout=60, env=env)
    assert shown.returncode == 0, shown.stderr
    lines = [ln for ln in shown.stdout.splitlines() if "streaming" in ln]
    assert any("incremental_load" in ln and "3 batches" in ln and "30 rows" in ln for ln in lines), shown.stdout
    assert any("failing_query" in ln and "failed" in ln for ln in lines), shown.stdout


ATTACH_SCRIPT = """
import json, sys
from pathlib import Path
from pyspark.sql import SparkSession
import runlink.spark

mode, out = sys.argv[1], Path(sys.argv[2])
key = "spark.sql.streaming.streamingQueryListeners"
builder = SparkSession.builder.master("local[1]").appName("runlink-streaming-attach")
for name, value in runlink.spark.conf().items():
    if name != key or mode == "conf":
        builder = builder.config(name, value)
spark = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate()
other = spark.newSession()


def ours(session):
    return [str(each.getClass().getName()) for each in session._jsparkSession.streams().listListeners()].count(
        "dev.runlink.spark.RunlinkStreamingListener")


before = ours(spark)
tracked = [runlink.spark.track_session(session).jvm_streaming_listener for session in (spark, spark, other, other)]
result = {"before": before, "after": [ours(spark), ours(other)], "tracked": tracked}
if mode == "attach":
    inbox = out / "inbox"
    inbox.mkdir(parents=True)
    for f in range(3):
        (inbox / f"part-{f}.json").write_text("".join(json.dumps({"id": f * 10 + i}) + "\\n" for i in range(10)))
    query = (spark.readStream.schema("id LONG").option("maxFilesPerTrigger", 1).json(str(inbox))
             .writeStream.format("noop").option("checkpointLocation", str(out / "ck")).queryName("attached_load")
             .trigger(availableNow=True).start())
    query.awaitTermination()
    result["query"] = {"id": str(query.id), "batches": len(query.recentProgress)}
print("RESULT " + json.dumps(result))
spark.stop()
"""


def _run_attach_script(mode: str, tmp_path: Path, env: dict[str, str]) -> dict:
    script = tmp_path / "attach_streaming.py"
    script.write_text(ATTACH_SCRIPT)
    res = subprocess.run([sys.executable, str(script), mode, str(tmp_path / "out")], capture_output=True, text=True,
                         env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])


def test_track_session_adds_the_streaming_listener_once(sqlite_tracker: Any, tmp_path: Path, unique: str) -> None:
    """A session created without runlink's streaming conf: track_session puts RunlinkStreamingListener on its
    StreamingQueryManager (and on a newSession()'s, which has its own) once, however often it is called, and the
    query's batches reach the tracker under the task's context."""
    listener_jar_or_skip()
    dag_id = f"stream_attach_{unique}"
    env = clean_env(tmp_path / "home", RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token,
                    AIRFLOW_CTX_DAG_ID=dag_id, AIRFLOW_CTX_TASK_ID="load", AIRFLOW_CTX_DAG_RUN_ID=RUN_ID,
                    AIRFLOW_CTX_TRY_NUMBER="1")
    result = _run_attach_script("attach", tmp_path, env)
    assert (result["before"], result["after"], result["tracked"]) == (0, [1, 1], [True] * 4)
    assert result["query"]["batches"] == 3

    def query() -> dict | None:
        for run in sqlite_tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]:
            for attempt in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for q in (q for app in attempt["spark_apps"] for q in app.get("streaming", [])):
                    if q["end_time"]:
                        return {**q, "task_id": attempt["task_id"]}
        return None

    found = wait_for(query, f"the attached query's end under {dag_id}", 90.0, interval_s=0.25)
    assert (found["task_id"], found["name"], found["query_id"]) == ("load", "attached_load", result["query"]["id"])
    assert (found["state"], found["total_batches"], found["total_input_rows"]) == ("succeeded", 3, 30)


def test_track_session_does_not_double_a_conf_registered_listener(tmp_path: Path) -> None:
    listener_jar_or_skip()
    result = _run_attach_script("conf", tmp_path, clean_env(tmp_path / "home", RUNLINK_TRACKING="false"))
    assert (result["before"], result["after"], result["tracked"]) == (1, [1, 1], [True] * 4)


SHARED_SCRIPT = """
import json, sys, threading
from pathlib import Path
from pyspark.sql import SparkSession
import runlink.spark

dag_id, out = sys.argv[1], Path(sys.argv[2])
builder = SparkSession.builder.master("local[2]").appName("runlink-streaming-shared")
for name, value in runlink.spark.conf().items():
    builder = builder.config(name, value)
spark = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "1").getOrCreate()
ids = {}


def task(task_id):
    runlink.spark.track_session(spark, context={"dag_id": dag_id, "dag_run_id": "manual__1", "task_id": task_id,
                                                "try_number": 1})
    inbox = out / task_id
    inbox.mkdir(parents=True)
    (inbox / "part-0.json").write_text("".join(json.dumps({"id": i}) + "\\\\n" for i in range(5)))
    query = (spark.readStream.schema("id LONG").json(str(inbox)).writeStream.format("noop")
             .option("checkpointLocation", str(out / ("ck_" + task_id))).queryName("load_" + task_id)
             .trigger(availableNow=True).start())
    query.awaitTermination()
    ids[task_id] = str(query.id)


threads = [threading.Thread(target=task, args=(t,)) for t in ("extract", "load")]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("RESULT " + json.dumps(ids))
spark.stop()
"""


CONNECT_CLIENT = """
import json, sys
from pathlib import Path
from pyspark.sql import SparkSession
import runlink.spark

url, dag_id, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
ids = {}
for task_id in ("extract", "load"):
    spark = SparkSession.builder.remote(url).create()  # a session per task, as two Airflow tasks would have
    runlink.spark.track_session(spark, context={"dag_id": dag_id, "dag_run_id": "manual__1", "task_id": task_id,
                                                "try_number": 1})
    inbox = out / task_id
    inbox.mkdir(parents=True)
    (inbox / "part-0.json").write_text("".join(json.dumps({"id": i}) + "\\n" for i in range(5)))
    query = (spark.readStream.schema("id LONG").json(str(inbox)).writeStream.format("noop")
             .option("checkpointLocation", str(out / ("ck_" + task_id))).queryName("load_" + task_id)
             .trigger(availableNow=True).start())
    query.awaitTermination()
    ids[task_id] = str(query.id)
    spark.stop()  # a client left with two open sessions does not exit
print("RESULT " + json.dumps(ids))
"""


def _run_client(script_text: str, args: list[str], tmp_path: Path, env: dict[str, str]) -> dict:
    script = tmp_path / "client.py"
    script.write_text(script_text)
    res = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=240)
    assert res.returncode == 0, res.stderr[-4000:]
    return json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])


def _each_tasks_query(tracker: Any, dag_id: str) -> dict[str, list]:
    """Each task's ended streaming queries (id, name, state), once both tasks have one."""
    def queries() -> dict | None:
        found: dict[str, list] = {}
        for run in tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]:
            for attempt in tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                found[attempt["task_id"]] = [(q["query_id"], q["name"], q["state"]) for app in attempt["spark_apps"]
                                             for q in app.get("streaming", []) if q["end_time"]]
        return found if len(found) == 2 and all(found.values()) else None

    return wait_for(queries, f"each task's ended query under {dag_id}", 90.0, interval_s=0.25)


def test_each_task_sees_its_streaming_query_on_a_shared_application(sqlite_tracker: Any, tmp_path: Path,
                                                                    unique: str) -> None:
    """One classic driver with no Airflow context, two task threads each calling track_session and starting a
    query: each query is reported under the task whose thread started it (its work_context)."""
    listener_jar_or_skip()
    dag_id = f"stream_shared_{unique}"
    env = clean_env(tmp_path / "home", RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token)
    ids = _run_client(SHARED_SCRIPT, [dag_id, str(tmp_path / "out")], tmp_path, env)
    found = _each_tasks_query(sqlite_tracker, dag_id)
    assert found == {task: [(ids[task], f"load_{task}", "succeeded")] for task in ("extract", "load")}


def test_each_spark_connect_sessions_streaming_query_is_under_its_task(sqlite_tracker: Any, tmp_path: Path,
                                                                       unique: str) -> None:
    """A Spark Connect server started with runlink's conf; two client sessions, each with its task's context
    (track_session sets it on the session's conf): each query is reported under its task."""
    dag_id = f"stream_connect_{unique}"
    env = clean_env(tmp_path / "home", RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token)
    with spark_connect_server(env, tmp_path / "server.log", "--url", sqlite_tracker.url) as url:
        ids = _run_client(CONNECT_CLIENT, [url, dag_id, str(tmp_path / "out")], tmp_path, env)
        found = _each_tasks_query(sqlite_tracker, dag_id)
    assert found == {task: [(ids[task], f"load_{task}", "succeeded")] for task in ("extract", "load")}
