"""Spark runs for the tests: a real `spark-submit` (local[2]) of tests/spark/apps against a real tracker, the
listener jar (or a skip), and the check that the tracker's stages match Spark's REST API (tests/spark,
tests/contract, tests/airflow)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

APPS = Path(__file__).resolve().parents[1] / "spark" / "apps"
SPARK_SUBMIT = Path(sys.executable).parent / "spark-submit"
SUBMIT_TIMEOUT_S = 420

#: tracker stage metric -> Spark REST StageData field
REST_METRICS = {
    "executor_run_time_ms": "executorRunTime",
    "executor_cpu_time_ns": "executorCpuTime",
    "executor_deserialize_time_ms": "executorDeserializeTime",
    "executor_deserialize_cpu_time_ns": "executorDeserializeCpuTime",
    "result_size_bytes": "resultSize",
    "jvm_gc_time_ms": "jvmGcTime",
    "result_serialization_time_ms": "resultSerializationTime",
    "input_bytes": "inputBytes",
    "input_records": "inputRecords",
    "output_bytes": "outputBytes",
    "output_records": "outputRecords",
    "shuffle_read_bytes": "shuffleReadBytes",
    "shuffle_read_records": "shuffleReadRecords",
    "shuffle_remote_bytes_read": "shuffleRemoteBytesRead",
    "shuffle_local_bytes_read": "shuffleLocalBytesRead",
    "shuffle_fetch_wait_ms": "shuffleFetchWaitTime",
    "shuffle_write_bytes": "shuffleWriteBytes",
    "shuffle_write_records": "shuffleWriteRecords",
    "shuffle_write_time_ns": "shuffleWriteTime",
    "memory_spilled_bytes": "memoryBytesSpilled",
    "disk_spilled_bytes": "diskBytesSpilled",
    "peak_execution_memory_bytes": "peakExecutionMemory",
}
REST_STAGE_FIELDS = {"num_tasks": "numTasks", "failed_tasks": "numFailedTasks", "killed_tasks": "numKilledTasks"}


def listener_jar_or_skip() -> str:
    from runlink.spark.conf import ListenerJarMissing, listener_jar

    try:
        return listener_jar()
    except ListenerJarMissing as exc:
        pytest.skip(str(exc))


@dataclass
class Submitted:
    returncode: int
    log: str
    seconds: float
    out: Path


def runlink_spark_conf(env: dict[str, str], *args: str) -> list[str]:
    """`runlink spark-conf` as a task would run it: its output, split into spark-submit arguments."""
    res = subprocess.run([sys.executable, "-m", "runlink", "spark-conf", *args], capture_output=True, text=True,
                         env=env, timeout=60)
    assert res.returncode == 0, res.stderr
    return shlex.split(res.stdout)


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment less any Airflow context or tracker settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "DBND__", "PYSPARK_", "SPARK_"))}
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, RUNLINK_HOME=str(home))
    env.update(extra)
    return env


def spark_submit(app: str, out: Path, conf_args: list[str], env: dict[str, str], *app_args: str,
                 timeout: float = SUBMIT_TIMEOUT_S) -> Submitted:
    out.mkdir(parents=True, exist_ok=True)
    cmd = [str(SPARK_SUBMIT), "--master", "local[2]", "--conf", "spark.sql.shuffle.partitions=4",
           "--conf", "spark.ui.port=0", "--conf", "spark.ui.showConsoleProgress=false",
           *conf_args, str(APPS / app), str(out), *app_args]
    start = time.monotonic()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout)
    log = res.stdout + "\n" + res.stderr
    (out / "driver.log").write_text(log)
    return Submitted(res.returncode, log, time.monotonic() - start, out)


def callsite_lines(app: str) -> dict[str, int]:
    """`# CALLSITE:name` markers of an app -> their line numbers."""
    marks = {}
    for number, line in enumerate((APPS / app).read_text().splitlines(), start=1):
        if "# CALLSITE:" in line:
            marks[line.split("# CALLSITE:")[1].strip()] = number
    return marks


def assert_stages_match_rest(app: dict, rest_stages: list[dict]) -> list[dict]:
    """Every stage Spark ran (COMPLETE or FAILED in its REST status API) is in the tracker's `app` with the same
    metrics, task counts and status, and no other; returns those REST stages. Shared by the Spark end-to-end
    tests and the compatibility matrix's contract test (tests/contract), which runs it on every Spark version."""
    ours = {(s["stage_id"], s["attempt_id"]): s for s in app["stages"]}
    ran = [s for s in rest_stages if s["status"] in ("COMPLETE", "FAILED")]
    assert set(ours) == {(s["stageId"], s["attemptId"]) for s in ran}
    for stage in ran:
        mine = ours[(stage["stageId"], stage["attemptId"])]
        expected = {k: stage[v] for k, v in REST_METRICS.items()}
        assert mine["metrics"] == expected, (stage["stageId"], stage["name"])
        assert {k: mine[k] for k in REST_STAGE_FIELDS} == {k: stage[v] for k, v in REST_STAGE_FIELDS.items()}
        assert mine["status"] == ("succeeded" if stage["status"] == "COMPLETE" else "failed")
    return ran
