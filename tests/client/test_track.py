"""Function spans and dataset operations against a real tracker: a plain script (subprocess) with nested tracked
functions, an exception, captured and masked arguments; threads and asyncio tasks keeping their own span stacks;
tracking off; `dataset_op` success and failure on the path a real local Spark (local[1]) wrote, one dataset."""

from __future__ import annotations

import asyncio
import enum
import html
import json
import os
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest

import runlink
from runlink import delivery, tracking
from runlink.config import Config
from support.cli import runlink_cli
from support.spark_runs import listener_jar_or_skip
from support.ui_pages import ui_page
from support.waiting import wait_for

SCRIPT = textwrap.dedent('''
    import json, runlink

    @runlink.track(capture_args=True, capture_result=True)
    def load(path, password, limit=3):
        runlink.log_metric("rows_loaded", 42)
        return [1, 2, 3]

    @runlink.track(name="validate-rows")
    def validate(rows):
        raise ValueError("bad row, token=Zx81k2j3h4g5f6d7s8a9")

    @runlink.track
    def transform(rows):
        with runlink.span("inner-block"):
            runlink.log_metric("inner", 1)
        return validate(rows)

    @runlink.track
    def pipeline():
        rows = load("/data/in", password="hunter2-very-secret", limit=5)
        try:
            transform(rows)
        except ValueError:
            pass
        with runlink.dataset_op("/tmp/rl-track/out", op="write") as op:
            op.set(rows=3)

    pipeline()
    print("CONTEXT=" + json.dumps(dict(runlink.tracking.process_context())))
''')


@pytest.fixture(scope="module")
def sqlite_tracker(tracker_factory: Any) -> Any:
    return tracker_factory(backend="sqlite")


def _script_env(tracker: Any, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "DBND__"))}
    env.update(RUNLINK_URL=tracker.url, RUNLINK_TOKEN=tracker.token, RUNLINK_HOME=str(home),
               RUNLINK_FLUSH_TIMEOUT="30")
    return env


def _run_script(path: Path, code: str, env: dict[str, str], *args: str) -> str:
    path.write_text(code)
    done = subprocess.run([sys.executable, str(path), *args], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def _attempt_of(tracker: Any, dag_id: str, ready: Any) -> dict[str, Any]:
    def found() -> dict[str, Any] | None:
        runs = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
        if not runs:
            return None
        tree = tracker.get_json(f"/api/v1/dag-runs/{runs[0]['id']}")
        return tree["task_attempts"][0] if tree["task_attempts"] else None

    return wait_for(found, f"the spans of {dag_id}", 60, ready=lambda a: bool(a) and ready(a), interval_s=0.2)


def test_plain_script_nested_spans_error_masked_args(sqlite_tracker: Any, tmp_path: Path) -> None:
    out = _run_script(tmp_path / "etl_job.py", SCRIPT, _script_env(sqlite_tracker, tmp_path / "home"))
    context = json.loads(out.split("CONTEXT=", 1)[1].splitlines()[0])
    assert context["dag_id"] == "python:etl_job.py" and context["task_id"] == "etl_job.py"

    attempt = _attempt_of(sqlite_tracker, "python:etl_job.py",
                          lambda a: len(a["spans"]) == 1 and len(a["spans"][0]["children"]) == 2)
    text = json.dumps(attempt)
    assert "hunter2" not in text and "Zx81k2j3h4g5f6d7s8a9" not in text

    (pipeline,) = attempt["spans"]
    assert pipeline["name"] == "pipeline" and pipeline["state"] == "success"
    load, transform = pipeline["children"]
    assert load["name"] == "load" and transform["name"] == "transform"
    assert load["args"] == {"path": "'/data/in'", "password": "***", "limit": "5"}
    assert load["result"] == "[1, 2, 3]" and load["metrics"] == ["rows_loaded"]
    assert transform["state"] == "failed" and transform["error"]["type"] == "builtins.ValueError"
    inner, validate = transform["children"]
    assert (inner["name"], inner["state"], inner["metrics"]) == ("inner-block", "success", ["inner"])
    assert validate["name"] == "validate-rows" and validate["state"] == "failed"
    assert "bad row, token=***" in validate["error"]["message"]
    assert "Traceback" in validate["error"]["traceback"] and "in validate" in validate["error"]["traceback"]
    for span in (pipeline, load, transform, inner, validate):
        assert span["duration_ms"] >= 0 and span["start_time"] <= span["end_time"]
    assert pipeline["duration_ms"] >= transform["duration_ms"] >= validate["duration_ms"]
    assert pipeline["start_time"] <= load["start_time"] <= transform["start_time"]
    assert {m["key"] for m in attempt["metrics"]} == {"rows_loaded", "inner"}
    (op,) = attempt["datasets"]
    assert (op["path"], op["operation"], op["success"], op["rows"]) == ("file:/tmp/rl-track/out", "write", True, 3)
    assert op["span_id"] == pipeline["id"] and pipeline["datasets"] == [op["id"]]

    shown = runlink_cli(sqlite_tracker, "runs", "show", "python:etl_job.py").stdout
    assert re.search(r"fn pipeline  \(\d+ ms\)", shown), shown
    assert re.search(r"\n\s+fn validate-rows \[failed\]  \(\d+ ms\)\n\s+error: builtins.ValueError: bad row", shown)
    page = html.unescape(ui_page(sqlite_tracker, f"/ui/task-attempts/{attempt['id']}"))
    assert "Tracked functions" in page and "validate-rows" in page and "password=***" in page
    assert page.index(">pipeline<") < page.index(">transform<") < page.index(">inner-block<")
    assert "hunter2" not in page


@pytest.fixture
def live_client(sqlite_tracker: Any, tmp_path: Path) -> Any:
    client = delivery.Client(Config(url=sqlite_tracker.url, token=sqlite_tracker.token, home=tmp_path / "home"))
    delivery.set_client(client)
    tracking._own_context = {"dag_id": f"python:{tmp_path.name}", "dag_run_id": tmp_path.name, "task_id": "t",
                             "try_number": "1"}
    yield client
    tracking._own_context = None
    client.close(10)


def test_threads_and_async_tasks_keep_their_own_stacks(sqlite_tracker: Any, live_client: Any,
                                                       tmp_path: Path) -> None:
    @runlink.track
    def leaf(label: str) -> str:
        return label

    @runlink.track
    async def step(label: str) -> str:
        await asyncio.sleep(0)  # the other task runs between here and the leaf
        return leaf(label)

    async def both() -> list[str]:
        with runlink.span("gather"):
            return list(await asyncio.gather(step("a"), step("b")))

    def worker(label: str) -> None:
        with runlink.span(f"thread-{label}"):
            leaf(label)

    assert asyncio.run(both()) == ["a", "b"]
    threads = [threading.Thread(target=worker, args=(label,)) for label in ("x", "y")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert live_client.flush(30)

    attempt = _attempt_of(sqlite_tracker, f"python:{tmp_path.name}", lambda a: len(a["spans"]) == 3)
    roots = {span["name"]: span for span in attempt["spans"]}
    assert set(roots) == {"gather", "thread-x", "thread-y"}
    steps = roots["gather"]["children"]
    assert [s["name"] for s in steps] == ["step", "step"]
    assert all([c["name"] for c in s["children"]] == ["leaf"] for s in steps)  # each leaf under its own step
    for label in ("x", "y"):
        assert [c["name"] for c in roots[f"thread-{label}"]["children"]] == ["leaf"]


class DbndDatasetOperationType(enum.Enum):
    """Databand's operation type as a migrated task still passes it."""

    read = "read"
    write = "write"


def test_reads_spelled_as_databand_or_upper_case_count_as_reads(sqlite_tracker: Any, live_client: Any,
                                                                tmp_path: Path) -> None:
    path = str(tmp_path / "events")
    runlink.log_dataset_op(path, op_type=DbndDatasetOperationType.read, rows=3)
    runlink.log_dataset_op(path, "READ", rows=3)
    with runlink.dataset_op(path, op_type=DbndDatasetOperationType.write) as op:
        op.set(rows=3)
    assert live_client.flush(30)

    def listed() -> dict[str, Any] | None:
        items = sqlite_tracker.get_json("/api/v1/views/datasets", q=path)["items"]
        return items[0] if items and items[0]["ops"] == 3 else None

    item = wait_for(listed, "the dataset's three operations", 60, interval_s=0.2)
    assert (item["reads"], item["writes"]) == (2, 1)


def test_tracking_off_runs_the_function_and_reports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNLINK_TRACKING", "false")
    delivery.set_client(None)
    calls = []

    @runlink.track(capture_args=True)
    def f(x: int) -> int:
        calls.append(x)
        if x < 0:
            raise KeyError(x)
        return x * 2

    assert f(4) == 8
    with pytest.raises(KeyError), runlink.span("off"):
        f(-1)
    assert calls == [4, -1]
    assert not delivery.get_client().tracking and tracking.current_span.get() is None


SPARK_SCRIPT = textwrap.dedent('''
    import sys
    from pyspark.sql import SparkSession
    import runlink, runlink.spark

    out = sys.argv[1]
    spark = (SparkSession.builder.master("local[1]").appName("rl-dataset-op")
             .config("spark.jars", runlink.spark.listener_jar()).config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "1").getOrCreate())
    runlink.spark.track_session(spark)
    df = spark.range(25).selectExpr("id", "id * 2 AS doubled")
    with runlink.dataset_op(out, op="write") as op:
        df.write.parquet(out)
        op.set(df)
    try:
        with runlink.dataset_op(out + "/", op="write") as op:
            df.write.parquet(out)  # the path exists: Spark refuses, the operation fails
    except Exception as exc:
        print("FAILED=" + type(exc).__name__)
    spark.stop()
''')


def test_dataset_op_success_and_failure_merge_with_the_spark_write(sqlite_tracker: Any, tmp_path: Path) -> None:
    pytest.importorskip("pyspark", reason="the matrix's Python legs have runlink without Spark")
    listener_jar_or_skip()
    out = tmp_path / "doubled"
    env = _script_env(sqlite_tracker, tmp_path / "home")
    stdout = _run_script(tmp_path / "spark_job.py", SPARK_SCRIPT, env, str(out))
    assert "FAILED=AnalysisException" in stdout

    def dataset() -> dict[str, Any] | None:
        items = [d for d in sqlite_tracker.get_json("/api/v1/views/datasets", q=str(out))["items"]]
        if len(items) != 1:
            return None
        view = sqlite_tracker.get_json(f"/api/v1/views/datasets/{items[0]['id']}")
        python_ops = [o for o in view["operations"] if o["sql_query_pk"] is None]
        return view if len(python_ops) == 2 and len(view["operations"]) >= 3 else None

    view = wait_for(dataset, "one dataset with the Python and Spark operations", 90, interval_s=0.3)
    assert view["dataset"]["path"] == f"file:{out}"
    python_ops = [o for o in view["operations"] if o["sql_query_pk"] is None]
    spark_ops = [o for o in view["operations"] if o["sql_query_pk"] is not None]
    assert [(o["operation"], o["success"], o["rows"]) for o in python_ops] == [("write", True, 25),
                                                                               ("write", False, None)]
    assert spark_ops and all(o["operation"] == "write" for o in spark_ops)
    assert any(o["rows"] == 25 for o in spark_ops)
    assert {o["dag_id"] for o in python_ops} == {"python:spark_job.py"}
    page = ui_page(sqlite_tracker, f"/ui/datasets/{view['dataset']['id']}")
    assert page.count(">failed</span>") == 1
