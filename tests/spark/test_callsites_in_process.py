"""A SparkSession built in the process that runs the user's code (an Airflow task, a notebook, a script) with
runlink's conf and no `track_session`: asking for the conf installs the call-site capture, so its jobs, stages and
queries are named by the user's lines (`file:line function`). Real local Spark, real tracker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support.spark_runs import clean_env, listener_jar_or_skip
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

SCRIPT = """
import json
from pyspark.sql import SparkSession
import runlink.spark
builder = SparkSession.builder.master("local[1]").appName("runlink-callsites-in-process")
for key, value in runlink.spark.conf().items():
    builder = builder.config(key, value)
spark = builder.config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2").getOrCreate()


def totals():
    return spark.range(0, 100, 1, 2).selectExpr("id % 3 AS k").groupBy("k").count().collect()  # SITE:totals


assert len(totals()) == 3
assert spark.range(10).count() == 10  # SITE:count
print("RESULT " + json.dumps({"app_id": spark.sparkContext.applicationId}))
spark.stop()
"""


def test_a_session_built_with_runlinks_conf_names_the_users_lines(sqlite_tracker: Any, tmp_path: Path) -> None:
    listener_jar_or_skip()
    script = tmp_path / "in_task.py"
    script.write_text(SCRIPT)
    env = clean_env(tmp_path / "home", RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token)
    res = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    app_id = json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])["app_id"]
    lines = {line.split("# SITE:")[1].strip(): number
             for number, line in enumerate(SCRIPT.splitlines(), start=1) if "# SITE:" in line}
    expected = {f"{script}:{lines['totals']} totals", f"{script}:{lines['count']} <module>"}

    def app() -> dict | None:
        for run in sqlite_tracker.get_json("/api/v1/dag-runs", dag_id="spark:runlink-callsites-in-process")["items"]:
            for attempt in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for found in attempt["spark_apps"]:
                    if (found["app_id"] == app_id and found.get("end_time")
                            and expected <= {q["callsite"] for q in found["queries"]}):
                        return found
        return None

    found = wait_for(app, "the queries at their lines", 90.0, interval_s=0.5)
    assert {j["callsite"] for j in found["jobs"]} == expected
    assert found["stages"] and {s["callsite"] for s in found["stages"]} <= expected
