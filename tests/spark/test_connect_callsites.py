"""Spark Connect: a client's Python lines name the server's jobs, stages and SQL queries. The client wraps its
actions (track_session) to send the line as an operation tag, with no extra round trip; the server makes it a job
tag, and the JVM listener of a server started with runlink's conf reads it. Real Connect server (local[1]), real
tracker."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from support.spark_connect import spark_connect_server
from support.spark_runs import clean_env
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(600)]

CLIENT = """
import json, sys
from pyspark.sql import SparkSession
import runlink.spark
spark = SparkSession.builder.remote(sys.argv[1]).getOrCreate()
runlink.spark.track_session(spark)
rows = spark.range(0, 1000, 1, 2).selectExpr("id % 5 AS k").groupBy("k").count().collect()  # SITE:collect


def write():
    spark.range(100).write.mode("overwrite").parquet(sys.argv[2])  # SITE:write


write()
assert len(rows) == 5
print("RESULT " + json.dumps({"app_id": spark.conf.get("spark.app.id"), "name": spark.conf.get("spark.app.name")}))
spark.stop()
"""


@pytest.fixture(scope="module")
def connect_url(sqlite_tracker: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Spark Connect server started with `runlink spark-conf`, reporting to the tracker."""
    home = tmp_path_factory.mktemp("connect")
    env = clean_env(home, RUNLINK_TOKEN=sqlite_tracker.token)
    with spark_connect_server(env, home / "server.log", "--url", sqlite_tracker.url) as url:
        yield url


def test_connect_clients_lines_name_the_servers_work(connect_url: str, sqlite_tracker: Any, tmp_path: Path) -> None:
    script = tmp_path / "connect_client.py"
    script.write_text(CLIENT)
    env = clean_env(tmp_path / "home", RUNLINK_URL=sqlite_tracker.url, RUNLINK_TOKEN=sqlite_tracker.token)
    res = subprocess.run([sys.executable, str(script), connect_url, str(tmp_path / "out")], capture_output=True,
                         text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-4000:]
    result = json.loads(res.stdout.split("RESULT ", 1)[1].splitlines()[0])
    lines = {line.split("# SITE:")[1].strip(): number
             for number, line in enumerate(CLIENT.splitlines(), start=1) if "# SITE:" in line}
    expected = {f"{script}:{lines['collect']} <module>", f"{script}:{lines['write']} write"}

    def the_app() -> dict | None:
        for run in sqlite_tracker.get_json("/api/v1/dag-runs", dag_id=f"spark:{result['name']}")["items"]:
            for attempt in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for found in attempt["spark_apps"]:
                    if found["app_id"] == result["app_id"]:
                        return found
        return None

    def seen() -> str:
        found = the_app() or {}
        return json.dumps({kind: [i.get("callsite") for i in found.get(kind, [])] for kind in ("jobs", "queries")})

    def complete() -> dict | None:
        found = the_app()
        return found if found and expected <= {q["callsite"] for q in found["queries"]} else None

    found = wait_for(complete, "the client's queries at their lines", 90.0, interval_s=0.5, context=seen)
    client_jobs = [j for j in found["jobs"] if j["callsite"] in expected]
    assert {j["callsite"] for j in client_jobs} == expected, [j["callsite"] for j in found["jobs"]]
    job_ids = {j["job_id"] for j in client_jobs}
    stages = [s for s in found["stages"] if set(s["job_ids"]) & job_ids]
    assert stages and all(s["callsite"] in expected for s in stages), [(s["name"], s["callsite"]) for s in stages]
