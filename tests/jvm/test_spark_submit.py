"""The listener jar in a real `spark-submit` (local[2]) on Spark 4.x (Scala 2.13) AND Spark 3.5 (Scala 2.12).

One jar, built once against Spark 4's jars, must load and report on both without a LinkageError. Spark 3.5
comes from the .venv-spark35 venv (scripts/test-spark35.sh creates it); without it that case is skipped and
says so. The receiver is a local HTTP server; the tracker's end-to-end tests live in tests/spark.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from runlink.protocol.events import validate_batch

ROOT = Path(__file__).resolve().parents[2]
APPS = Path(__file__).resolve().parent / "apps"
JAR = ROOT / "python" / "runlink" / "jars" / "runlink-spark-listener.jar"
LINKAGE = re.compile(r"LinkageError|NoSuchMethodError|NoClassDefFoundError|AbstractMethodError|listener disabled")
SPARKS = [pytest.param(".venv", "4.", "2.13", id="spark4"),
          pytest.param(".venv-spark35", "3.5.", "2.12", id="spark3.5")]
CONTEXT = {"dag_id": "etl", "execution_date": "2026-11-21", "task_id": "load", "try_number": "2"}
JVM_TYPES = {"spark_app.start", "spark_app.end", "spark_job.start", "spark_job.end", "spark_stage.completed",
             "spark_executor", "sql_query", "agent_health"}

pytestmark = pytest.mark.spark


def _venv_or_skip(venv: str) -> Path:
    bin_dir = ROOT / venv / "bin"
    if not (bin_dir / "spark-submit").exists():
        pytest.skip(f"{venv} has no pyspark: bash scripts/test-spark35.sh creates the Spark 3.5 venv")
    return bin_dir


@pytest.fixture(scope="module")
def jar() -> Path:
    res = subprocess.run(["bash", str(ROOT / "scripts" / "build-jar.sh")], cwd=ROOT, capture_output=True,
                         text=True, timeout=900)
    assert res.returncode == 0, res.stdout + res.stderr
    return JAR


def _submit(bin_dir: Path, jar: Path, app: str, tmp: Path, conf: dict[str, str], env_extra: dict[str, str]
            ) -> tuple[subprocess.CompletedProcess, float]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "DBND__", "PYSPARK_", "SPARK_"))}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", PYSPARK_PYTHON=str(bin_dir / "python"),
               PYSPARK_DRIVER_PYTHON=str(bin_dir / "python"), RUNLINK_HOME=str(tmp / "home"), **env_extra)
    args = [str(bin_dir / "spark-submit"), "--master", "local[2]", "--jars", str(jar),
            "--conf", "spark.extraListeners=dev.runlink.spark.RunlinkSparkListener",
            "--conf", "spark.sql.queryExecutionListeners=dev.runlink.spark.RunlinkQueryListener",
            "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.ui.enabled=false",
            "--conf", f"spark.sql.warehouse.dir={tmp / 'warehouse'}"]
    for key, value in conf.items():
        args += ["--conf", f"{key}={value}"]
    args += [str(APPS / app), str(tmp)]
    start = time.monotonic()
    res = subprocess.run(args, cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    (tmp / "driver.log").write_text(res.stdout + res.stderr)
    return res, time.monotonic() - start


@pytest.mark.parametrize(("venv", "spark_version", "scala_version"), SPARKS)
def test_one_jar_reports_a_real_application(venv, spark_version, scala_version, jar, receiver, tmp_path):
    bin_dir = _venv_or_skip(venv)
    conf = {"spark.runlink.url": receiver.url, "spark.runlink.token": "t0ken"}
    conf.update({f"spark.env.AIRFLOW_CTX_{k.upper()}": v for k, v in CONTEXT.items()})
    # a stale context in the environment must not leak into the one the conf carries
    res, _ = _submit(bin_dir, jar, "listener_app.py", tmp_path, conf,
                     {"AIRFLOW_CTX_DAG_ID": "other", "AIRFLOW_CTX_MAP_INDEX": "3"})
    log = res.stdout + res.stderr
    (tmp_path / "events.json").write_text(json.dumps(receiver.batches, indent=1))  # for a failure's post-mortem
    assert res.returncode == 0 and "APP DONE" in log, log[-5000:]
    assert not LINKAGE.search(log), LINKAGE.search(log).group(0)
    assert "Registered listener dev.runlink.spark.RunlinkSparkListener" in log.replace("listenerdev", "listener dev")

    for batch in receiver.batches:
        validate_batch(batch)
    assert all(h.get("Authorization") == "Bearer t0ken" for h in receiver.headers)
    events = receiver.events()
    assert {e["type"] for e in events} == JVM_TYPES
    assert all(e["context"] == CONTEXT for e in events), {str(e.get("context")) for e in events}
    app_ids = {e["spark"]["app_id"] for e in events if e["type"] != "agent_health"}
    assert len(app_ids) == 1

    start = receiver.events("spark_app.start")[0]["payload"]
    assert start["spark_version"].startswith(spark_version)
    assert start["scala_version"].startswith(scala_version)
    assert start["conf"]["spark.runlink.token"] == "*****"
    assert receiver.events("spark_app.end")

    jobs = {e["payload"]["job_id"]: e["payload"] for e in receiver.events("spark_job.end")}
    failed_jobs = [j for j in jobs.values() if j["result"] == "failed"]
    assert len(failed_jobs) == 1 and "is not true" in failed_jobs[0]["failure_reason"]
    assert set(jobs) == {e["payload"]["job_id"] for e in receiver.events("spark_job.start")}
    stages = [e["payload"] for e in receiver.events("spark_stage.completed")]
    failed_stage = next(s for s in stages if s["status"] == "failed")
    assert failed_stage["failed_tasks"] >= 1 and failed_stage["job_ids"]
    assert sum(s["metrics"]["output_records"] for s in stages) >= 1000
    assert sum(s["metrics"]["executor_run_time_ms"] for s in stages) > 0

    queries = [e["payload"] for e in receiver.events("sql_query")]
    people = str(tmp_path / "people")
    write = next(q for q in queries if any(o.get("path", "").endswith(people) for o in q["outputs"]))
    out = next(o for o in write["outputs"] if o["path"].endswith(people))
    assert (out["format"], out["rows"], out["mode"]) == ("parquet", 1000, "Overwrite")
    assert [f["name"] for f in out["schema"]] == ["id", "k"]
    read = next(q for q in queries if q["action"] == "collectToPython" and q["inputs"])
    assert read["inputs"][0]["path"].endswith(people) and read["inputs"][0]["rows"] == 1000
    tables = {o.get("table") for q in queries for o in q["outputs"]}
    assert "spark_catalog.default.joined" in tables
    failure = next(q for q in queries if not q["success"])
    assert failure["error"]["type"] and "is not true" in failure["error"]["message"]
    # the query's execution id is the one its jobs carry
    job_exec_ids = {e["payload"]["sql_execution_id"] for e in receiver.events("spark_job.start")}
    assert write["execution_id"] in job_exec_ids and read["execution_id"] in job_exec_ids

    health = receiver.events("agent_health")[-1]["payload"]
    assert health["events_dropped"] == 0 and health["send_errors"] == 0


@pytest.mark.parametrize("case", ["down", "hanging"])
def test_a_down_or_hanging_tracker_does_not_hurt_the_application(case, jar, hanging_tracker, tmp_path):
    bin_dir = _venv_or_skip(".venv")
    if case == "down":
        url = "http://127.0.0.1:9"  # discard port: nothing listens, the connection is refused
    else:
        url = hanging_tracker
    conf = {"spark.runlink.url": url, "spark.runlink.flushTimeoutMs": "2000"}
    res, seconds = _submit(bin_dir, jar, "tiny_app.py", tmp_path, conf, {})
    log = res.stdout + res.stderr
    assert res.returncode == 0 and "APP DONE" in log, log[-5000:]
    assert not LINKAGE.search(log)
    match = re.search(r"runlink: (\d+) events not delivered to \S+ within (\d+) ms", log)
    assert match, log[-3000:]
    waited_ms = int(match.group(2))
    assert waited_ms <= 2000 + 500, f"the end-of-application flush waited {waited_ms} ms"
    if case == "down":
        assert waited_ms < 1000, "a refused connection must not cost the full flush timeout"
    print(f"{case}: flush at application end waited {waited_ms} ms; whole spark-submit {seconds:.1f}s")
