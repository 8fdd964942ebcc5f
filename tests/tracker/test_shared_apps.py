"""A Spark application shared by Airflow tasks (work_context on its job, stage and query events), against the real
tracker on SQLite and PostgreSQL: each attempt's tree shows the application with only its own work, its owner's
tree also the work no task claimed, the application's page all of it and who used it; a bad work_context is a 422.
The end-to-end runs with real Spark are in tests/airflow/test_shared_cluster.py."""

from __future__ import annotations

from typing import Any

from builders import event, stage

from runlink import ids
from runlink.spark.job_context import encode
from support.ui_pages import ui_page

T = "2026-11-21T01:00:0{}Z"


def _work(app: dict[str, Any], job_id: int, work: dict[str, Any] | None, owner: dict[str, Any] | None,
          out: str) -> list[dict[str, Any]]:
    """One job with one stage and one query writing `out`, as the JVM reports them."""
    events = [
        event("spark_job.start", {"job_id": job_id, "stage_ids": [job_id * 3]}, context=owner, spark=app,
              agent="jvm", time=T.format(1)),
        stage(app, job_id * 3, context=owner),
        event("spark_job.end", {"job_id": job_id, "result": "succeeded"}, context=owner, spark=app, agent="jvm",
              time=T.format(3)),
        event("sql_query", {"execution_id": job_id, "action": "save", "success": True,
                            "outputs": [{"operation": "write", "path": out, "format": "parquet"}]},
              context=owner, spark=app, agent="jvm", time=T.format(4)),
    ]
    if work is not None:
        for e in events:
            e["work_context"] = work
    return events


def _tree(tracker: Any, dag_id: str) -> dict[str, Any]:
    [run] = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    return tracker.get_json(f"/api/v1/dag-runs/{run['id']}")


def _app_of(tree: dict[str, Any], task_id: str) -> dict[str, Any]:
    [attempt] = [a for a in tree["task_attempts"] if a["task_id"] == task_id]
    [app] = attempt["spark_apps"]
    return app


def test_each_attempt_sees_only_its_work_on_an_app_that_belongs_to_one_of_them(tracker: Any, unique: str) -> None:
    """A classic driver started inside task `a` (the app is a's) whose thread also runs task `b`'s work."""
    dag_id = f"shared_{unique}"
    base = {"dag_id": dag_id, "dag_run_id": "manual__1", "execution_date": "2026-11-21T00:00:00+00:00"}
    task_a, task_b = {**base, "task_id": "a", "try_number": "1"}, {**base, "task_id": "b", "try_number": "1"}
    app = {"app_id": f"local-{unique}", "attempt_id": None}
    events = [event("spark_app.start", {"name": "driver"}, context=task_a, spark=app, agent="jvm", time=T.format(0)),
              *_work(app, 1, None, task_a, "/out/a_unclaimed"),
              *_work(app, 2, task_a, task_a, "/out/a"),
              *_work(app, 3, task_b, task_a, "/out/b")]
    assert tracker.post_events(events).status_code == 202

    tree = _tree(tracker, dag_id)
    mine, theirs = _app_of(tree, "a"), _app_of(tree, "b")
    assert mine["id"] == theirs["id"] == ids.spark_app_id(app["app_id"], None)
    assert mine["shared"] and theirs["shared"]
    assert [j["job_id"] for j in mine["jobs"]] == [1, 2], "the owner: its own work and the unclaimed"
    assert [s["stage_id"] for s in mine["stages"]] == [3, 6]
    assert [j["job_id"] for j in theirs["jobs"]] == [3]
    assert [s["stage_id"] for s in theirs["stages"]] == [9]
    assert [o["path"] for q in theirs["queries"] for o in q["outputs"]] == ["/out/b"]
    assert sorted(o["path"] for q in mine["queries"] for o in q["outputs"]) == ["/out/a", "/out/a_unclaimed"]

    page = tracker.get_json(f"/api/v1/spark-apps/{mine['id']}")
    assert [j["job_id"] for j in page["jobs"]] == [1, 2, 3]
    assert {u["task_id"] for u in page["used_by"]} == {"a", "b"}
    assert page["task_attempt_pk"] == next(a["id"] for a in tree["task_attempts"] if a["task_id"] == "a")


def test_an_app_without_airflow_context_is_a_run_of_its_own_and_under_each_user(tracker: Any, unique: str) -> None:
    dag_id = f"connect_{unique}"
    base = {"dag_id": dag_id, "dag_run_id": "manual__1"}
    app = {"app_id": f"local-{unique}", "attempt_id": None}
    work = {t: {**base, "task_id": t, "try_number": "1"} for t in ("extract", "load")}
    name = f"Spark Connect server {unique}"
    events = [event("spark_app.start", {"name": name}, spark=app, agent="jvm", time=T.format(0)),
              *_work(app, 1, work["extract"], None, "/out/extract"),
              *_work(app, 2, work["load"], None, "/out/load")]
    # a replay (and the other order) changes nothing
    assert tracker.post_events(events[::-1]).status_code == 202
    assert tracker.post_events(events).json()["duplicates"] == len(events)

    tree = _tree(tracker, dag_id)
    for job_id, task_id in ((1, "extract"), (2, "load")):
        app_view = _app_of(tree, task_id)
        assert [j["job_id"] for j in app_view["jobs"]] == [job_id]
        assert [o["path"] for q in app_view["queries"] for o in q["outputs"]] == [f"/out/{task_id}"]
    [own_run] = tracker.get_json("/api/v1/dag-runs", dag_id=f"spark:{name}", run_id=app["app_id"])["items"]
    own = tracker.get_json(f"/api/v1/dag-runs/{own_run['id']}")
    [app_view] = [a for at in own["task_attempts"] for a in at["spark_apps"]]
    assert app_view["shared"] and app_view["jobs"] == [], "every job was claimed by a task"


def test_a_bad_work_context_is_a_422_naming_it(tracker: Any, unique: str) -> None:
    app = {"app_id": f"local-{unique}", "attempt_id": None}
    bad = event("spark_job.start", {"job_id": 1, "stage_ids": []}, spark=app, agent="jvm")
    bad["work_context"] = {"dag_id": "d", "execution_date": "yesterday"}
    response = tracker.post_events([bad])
    assert response.status_code == 422
    assert response.json()["detail"]["field"] == "work_context.execution_date"


def test_the_property_value_is_small_and_has_no_commas() -> None:
    value = encode({"dag_id": "etl,nightly", "dag_run_id": "manual__2026-12-03T10:00:00+00:00", "task_id": "load",
                    "try_number": 2, "map_index": -1, "uid": None, "token": "never"})
    assert value == ("dag_id=etl%2Cnightly&dag_run_id=manual__2026-12-03T10%3A00%3A00%2B00%3A00&task_id=load"
                     "&try_number=2&map_index=-1")
    assert encode({"task_id": "load"}) is None, "nothing to link to without a dag_id"


def test_the_run_grid_shows_a_shared_app_under_each_attempt_that_used_it(tracker: Any, unique: str) -> None:
    """The DAG run's grid (/api/v1/views/dag-runs/{pk}) places shared applications as the run tree does: the
    driver task `a`'s app under `a` and under `b` (whose work ran there), a Spark Connect server's app under `b`
    only; failed jobs are each attempt's own."""
    dag_id = f"grid_{unique}"
    base = {"dag_id": dag_id, "dag_run_id": "manual__1", "execution_date": "2026-11-21T00:00:00+00:00"}
    task_a, task_b = {**base, "task_id": "a", "try_number": "1"}, {**base, "task_id": "b", "try_number": "1"}
    driver = {"app_id": f"local-{unique}", "attempt_id": None}
    server = {"app_id": f"connect-{unique}", "attempt_id": None}
    failing = _work(driver, 3, task_b, task_a, "/out/b")
    failing[2]["payload"]["result"] = "failed"
    events = [event("spark_app.start", {"name": "driver"}, context=task_a, spark=driver, agent="jvm",
                    time=T.format(0)),
              event("spark_app.start", {"name": f"server {unique}"}, spark=server, agent="jvm", time=T.format(0)),
              *_work(driver, 1, None, task_a, "/out/a_unclaimed"),
              *_work(driver, 2, task_a, task_a, "/out/a"),
              *failing,
              *_work(server, 1, task_b, None, "/out/b_connect")]
    assert tracker.post_events(events).status_code == 202

    [run] = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    view = tracker.get_json(f"/api/v1/views/dag-runs/{run['id']}")
    grid = {a["task_id"]: {app["app_id"]: (app["shared"], app["failed_jobs"]) for app in a["spark_apps"]}
            for a in view["task_attempts"]}
    assert grid == {"a": {driver["app_id"]: (True, 0)},
                    "b": {driver["app_id"]: (True, 1), server["app_id"]: (True, 0)}}
    assert view["run_spark_apps"] == []
    tree = _tree(tracker, dag_id)
    assert {a["task_id"]: sorted(app["app_id"] for app in a["spark_apps"]) for a in tree["task_attempts"]} == {
        task: sorted(apps) for task, apps in grid.items()}, "the grid and the run tree agree"
    html = ui_page(tracker, f"/ui/dag-runs/{run['id']}")
    assert html.count("(shared: this task&#39;s work)") == 3, "the grid's app links say they are shared"
