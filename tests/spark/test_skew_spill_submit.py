"""A plain `spark-submit` of a PySpark file (it never imports runlink; runlink's conf only) against a real tracker,
run twice as the same Airflow task (its context in the environment, as a parent task sets it): a usual day (small,
even input) and a bad one (25x the input, a hot key, a sort over the spill threshold). Of the bad run:

* every job, stage and SQL query is named by the user's Python line (`file:line function`), never by Spark's
  threads (`CompletableFuture.java`) or py4j's reflection (`NativeMethodAccessorImpl.java:0`);
* each stage carries its task distribution: the hot-key stage shows skew (max / median shuffle records), the
  sorting stage shows spill, the failing stage its failed-task reason;
* the diagnosis against the usual day names the hot-key stage by its line with skew, the sorting stage with spill
  and input growth.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from runlink.protocol import make_event
from runlink.tracker.diagnosis import SKEW
from support.spark_runs import callsite_lines, clean_env, listener_jar_or_skip, runlink_spark_conf, spark_submit
from support.waiting import wait_for

pytestmark = [pytest.mark.spark, pytest.mark.timeout(900)]

APP = "skew_spill_app.py"
APP_PATH = str(Path(__file__).parent / "apps" / APP)
TASK_ID = "sort_events"
DAYS = ("2026-11-22T10:00:00+00:00", "2026-11-23T10:00:00+00:00")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _task_run(tracker: Any, tmp: Path, dag_id: str, day: str, *app_args: str) -> dict[str, Any]:
    """One run of the task: Airflow's start event, the spark-submit with the task's context in its environment,
    Airflow's end event (success) once the tracker holds the whole app; returns the attempt with that app."""
    run_id = f"scheduled__{day}"
    ctx = {"dag_id": dag_id, "dag_run_id": run_id, "execution_date": day, "task_id": TASK_ID, "try_number": "1"}
    start = make_event("task_attempt.start", {"state": "running", "start_date": _now(),
                                              "operator": "SparkSubmitOperator"}, context=ctx, agent="airflow")
    assert tracker.post_events([start]).status_code == 202
    conf_args = runlink_spark_conf(clean_env(tmp / "home"), "--url", tracker.url)
    conf_args += ["--conf", "spark.shuffle.spill.numElementsForceSpillThreshold=20000",
                  "--conf", "spark.sql.adaptive.coalescePartitions.enabled=false",
                  "--conf", "spark.sql.adaptive.skewJoin.enabled=false"]
    env = clean_env(tmp / "home", RUNLINK_TOKEN=tracker.token, AIRFLOW_CTX_DAG_ID=dag_id,
                    AIRFLOW_CTX_TASK_ID=TASK_ID, AIRFLOW_CTX_EXECUTION_DATE=day, AIRFLOW_CTX_DAG_RUN_ID=run_id,
                    AIRFLOW_CTX_TRY_NUMBER="1")
    submitted = spark_submit(APP, tmp / "out", conf_args, env, *app_args)
    assert submitted.returncode == 0, submitted.log[-6000:]
    app_id = json.loads((submitted.out / "app.json").read_text())["app_id"]

    def attempt(state: str | None = None) -> dict[str, Any] | None:
        for run in tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]:
            if run["run_id"] != run_id:
                continue
            for found in tracker.get_json(f"/api/v1/dag-runs/{run['id']}")["task_attempts"]:
                for app in found["spark_apps"]:
                    if (app["app_id"] == app_id and app.get("end_time") and len(app["queries"]) >= 5
                            and app["jobs"] and all(j.get("result") for j in app["jobs"])
                            and (state is None or found["state"] == state)):
                        return found
        return None

    wait_for(attempt, f"app {app_id} complete under {dag_id}", 90.0, interval_s=0.25)
    end = make_event("task_attempt.end", {"state": "success", "end_date": _now()}, context=ctx, agent="airflow")
    assert tracker.post_events([end]).status_code == 202
    return wait_for(lambda: attempt("success"), f"{dag_id} {run_id} ended", 30.0, interval_s=0.25)


@pytest.fixture(scope="module")
def runs(sqlite_tracker: Any, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """The task's two attempts, the usual day first, each with its Spark application."""
    listener_jar_or_skip()
    dag_id = f"skew_spill_{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("skew")
    return [_task_run(sqlite_tracker, tmp / "usual", dag_id, DAYS[0], "even"),
            _task_run(sqlite_tracker, tmp / "bad", dag_id, DAYS[1])]


@pytest.fixture(scope="module")
def app(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The bad run's application as the tracker's run tree shows it."""
    (found,) = runs[1]["spark_apps"]
    return found


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


def test_diagnosis_against_the_usual_day_names_skew_spill_and_input_growth(runs: list[dict[str, Any]],
                                                                            sqlite_tracker: Any) -> None:
    """The bad run against the usual one: the hot-key stage by its line with skew measured from its task
    distribution; the sorting stage by its line with spill (none the usual day) and its input grown."""
    marks = callsite_lines(APP)
    usual, bad = runs
    found = sqlite_tracker.get_json(f"/api/v1/task-attempts/{bad['id']}/diagnosis")
    assert found["history"]["attempt_ids"] == [usual["id"]]
    causes: dict[str, list[dict[str, Any]]] = {}
    for finding in found["findings"]:
        if finding["kind"] == "stage":
            assert finding["stage"]["matched_runs"] == 1, finding  # every stage found in the usual run
            causes.setdefault(finding["stage"]["callsite"], []).extend(finding["causes"])
    skewed = causes.get(f"{APP_PATH}:{marks['skewed']} <module>", [])
    skews = [c for c in skewed if c["cause"] == "skew"]
    assert skews and all(c["estimated"] is False for c in skews), causes
    assert max(c["ratio"] for c in skews) >= SKEW, skews  # task duration's, else the hot key's shuffle records
    spilling = causes.get(f"{APP_PATH}:{marks['spill']} <module>", [])
    assert any(c["cause"] == "spill" and c["how"] == "appeared" and c["after"] > 0 for c in spilling), causes
    grown = [c for c in spilling if c["cause"] == "input growth"]
    assert grown and max(c["ratio"] for c in grown) >= 10, causes
    texts = [c["text"] for c in skews + spilling]
    assert any(t.startswith("skew: ") for t in texts) and any(t.startswith("spill appeared: ") for t in texts)
    assert any(t.startswith("input grew (") for t in texts), texts
    assert found["summary"].startswith(f"{found['attempt']['dag_id']}.{TASK_ID} took "), found["summary"]
