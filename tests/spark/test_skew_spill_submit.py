"""A plain `spark-submit` of a PySpark file (it never imports runlink; runlink's conf only) against a real tracker:

* every job, stage and SQL query is named by the user's Python line (`file:line function`), never by Spark's
  threads (`CompletableFuture.java`) or py4j's reflection (`NativeMethodAccessorImpl.java:0`);
* each stage carries its task distribution: the hot-key stage shows skew (max / median shuffle records), the
  sorting stage shows spill, the failing stage its failed-task reason.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from support.spark_runs import callsite_lines, clean_env, listener_jar_or_skip, runlink_spark_conf, spark_submit
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]

APP = "skew_spill_app.py"
APP_PATH = str(Path(__file__).parent / "apps" / APP)


@pytest.fixture(scope="module")
def app(sqlite_tracker: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The application as the tracker's run tree shows it, once every job ended and every query arrived."""
    listener_jar_or_skip()
    tmp = tmp_path_factory.mktemp("skew")
    conf_args = runlink_spark_conf(clean_env(tmp / "home"), "--url", sqlite_tracker.url)
    conf_args += ["--conf", "spark.shuffle.spill.numElementsForceSpillThreshold=20000",
                  "--conf", "spark.sql.adaptive.coalescePartitions.enabled=false",
                  "--conf", "spark.sql.adaptive.skewJoin.enabled=false"]
    env = clean_env(tmp / "home", RUNLINK_TOKEN=sqlite_tracker.token)
    submitted = spark_submit(APP, tmp / "out", conf_args, env)
    assert submitted.returncode == 0, submitted.log[-6000:]
    app_id = json.loads((submitted.out / "app.json").read_text())["app_id"]

    def complete() -> dict | None:
        for run in sqlite_tracker.get_json("/api/v1/dag-runs", dag_id="spark:runlink-skew-spill")["items"]:
            for attempt in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for found in attempt["spark_apps"]:
                    if (found["app_id"] == app_id and found.get("end_time") and len(found["queries"]) >= 4
                            and found["jobs"] and all(j.get("result") for j in found["jobs"])):
                        return found
        return None

    return wait_for(complete, f"app {app_id} complete", 90.0, interval_s=0.25)


def test_jobs_stages_and_queries_name_the_users_lines(app: dict[str, Any]) -> None:
    marks = callsite_lines(APP)
    line = {name: f"{APP_PATH}:{number} <module>" for name, number in marks.items()}
    line["count"] = f"{APP_PATH}:{marks['count']} count_rows"  # the function the line is in
    everything = app["jobs"] + app["stages"] + app["queries"]
    sites = [item.get("callsite") for item in everything]
    assert all(site and site.startswith(APP_PATH + ":") for site in sites), sites  # none is Spark's or py4j's
    assert not any(".java:" in site for site in sites)

    queries = app["queries"]
    skewed_query = next(q for q in queries if any(o["path"].rstrip("/").endswith("/skewed") for o in q["outputs"]))
    assert skewed_query["callsite"] == line["skewed"]
    assert {q["callsite"] for q in queries if q["action"] == "count"} == {line["count"]}
    (failed,) = [q for q in queries if not q["success"]]
    assert failed["callsite"] == line["failing"]
    # the stages an AQE thread submitted for the write carry the write's line too
    skew_stages = [s for s in app["stages"] if s["callsite"] == line["skewed"]]
    assert len(skew_stages) >= 2, [(s["stage_id"], s["name"], s["callsite"]) for s in app["stages"]]
    assert {j["callsite"] for j in app["jobs"]} >= {line["skewed"], line["spill"], line["count"], line["failing"]}


def test_stage_distributions_show_skew_spill_and_failures(app: dict[str, Any]) -> None:
    marks = callsite_lines(APP)
    stages = [s for s in app["stages"] if s["status"] == "succeeded"]
    assert all(s["distribution"] and s["distribution"]["tasks"] == s["num_tasks"] for s in stages)

    # the hot key: one of the 8 reduce tasks reads ~90% of the rows
    hot = max(stages, key=lambda s: s["distribution"]["skew"].get("shuffle_read_records") or 0)
    assert hot["callsite"] == f"{APP_PATH}:{marks['skewed']} <module>"
    records = hot["distribution"]["metrics"]["shuffle_read_records"]
    assert records["max"] >= 150_000 and records["p50"] < 20_000, records
    assert hot["distribution"]["skew"]["shuffle_read_records"] >= 5
    assert records["max"] <= hot["metrics"]["shuffle_read_records"]
    slowest = hot["distribution"]["slowest_task"]
    assert slowest["host"] and slowest["executor_id"] == "driver"
    assert hot["task_skew"] == hot["distribution"]["skew"]["duration_ms"]

    # spill: the sort ran over the forced spill threshold
    spilled = [s for s in stages if s["callsite"] == f"{APP_PATH}:{marks['spill']} <module>"
               and s["distribution"]["metrics"]["memory_spilled_bytes"]["max"] > 0]
    assert spilled, [(s["stage_id"], s["distribution"]["metrics"]) for s in stages]
    for stage in spilled:
        spill = stage["distribution"]["metrics"]["memory_spilled_bytes"]
        assert spill["min"] <= spill["p50"] <= spill["p95"] <= spill["max"] <= stage["metrics"]["memory_spilled_bytes"]

    # the failing stage: its task's reason, counted
    (failed,) = [s for s in app["stages"] if s["status"] == "failed"]
    (reason,) = failed["distribution"]["failed_task_reasons"]
    assert "runlink-skew-boom" in reason["reason"] and reason["count"] == failed["failed_tasks"] == 1


def test_diagnosis_names_the_skewed_and_the_spilling_stage(app: dict[str, Any], sqlite_tracker: Any) -> None:
    """The diagnosis of the run (no earlier run to compare with): the hot-key stage by its line with skew, measured
    from its task distribution; the sorting stage by its line with spill."""
    marks = callsite_lines(APP)
    runs = sqlite_tracker.get_json("/api/v1/dag-runs", dag_id="spark:runlink-skew-spill")["items"]
    (attempt,) = [a for run in runs for a in sqlite_tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]
                  if any(found["id"] == app["id"] for found in a["spark_apps"])]
    found = sqlite_tracker.get_json(f"/api/v1/task-attempts/{attempt['id']}/diagnosis")
    causes = {}
    for finding in found["findings"]:
        if finding["kind"] == "stage":
            causes.setdefault(finding["stage"]["callsite"], []).extend(finding["causes"])
    skews = [c for c in causes[f"{APP_PATH}:{marks['skewed']} <module>"] if c["cause"] == "skew"]
    assert skews and all(c["estimated"] is False for c in skews), skews
    assert max(c["ratio"] for c in skews) >= 5, skews
    assert any(c["cause"] == "spill" and c["after"] > 0 for c in causes[f"{APP_PATH}:{marks['spill']} <module>"])
    assert "skew" in found["summary"] and "spill" in found["summary"]
