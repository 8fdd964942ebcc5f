"""Linking through a real tracker: every context spelling, placeholders filled by later events,
Airflow 3 runs without a logical date (SQLite and PostgreSQL)."""

from __future__ import annotations

from builders import event


def _runs(tracker, dag_id):
    return tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]


def _tree(tracker, dag_id):
    [run] = _runs(tracker, dag_id)
    return tracker.get_json(f"/api/v1/dag-runs/{run['id']}")


def test_every_spelling_lands_in_one_task_attempt(tracker, unique):
    dag = f"spell_{unique}"
    full = {"dag_id": dag, "execution_date": "2026-11-21T02:00:00+02:00", "task_id": "t", "try_number": "1",
            "uid": "prod", "dag_run_id": "scheduled__2026-11-21T00:00:00+00:00"}
    spellings = {
        "offset": {"execution_date": "2026-11-21T00:00:00+00:00"},
        "no_offset": {"execution_date": "2026-11-21T00:00:00"},
        "zulu_micros": {"logical_date": "2026-11-21T00:00:00.000000Z"},
        "ts_nodash": {"execution_date": "20261121T000000"},
        "ds": {"execution_date": "2026-11-21"},
        "ds_nodash": {"execution_date": "20261121"},
        "run_id_only": {"dag_run_id": "scheduled__2026-11-21T00:00:00+00:00"},
    }
    evs = [event("task_attempt.start", {"state": "running"}, context=full, agent="airflow")]
    for name, spelling in spellings.items():
        ctx = {"dag_id": dag, "task_id": "t", "try_number": "1", "uid": "prod", **spelling}
        evs.append(event("metric", {"key": name, "value": 1}, context=ctx))
    no_uid = {"dag_id": dag, "execution_date": "2026-11-21T00:00:00Z", "task_id": "t", "try_number": "1"}
    evs.append(event("metric", {"key": "no_uid", "value": 1}, context=no_uid))
    assert tracker.post_events(evs).status_code == 202
    tree = _tree(tracker, dag)
    [attempt] = tree["task_attempts"]
    assert sorted(m["key"] for m in attempt["metrics"]) == sorted([*spellings, "no_uid"])
    assert attempt["try_number"] == 1 and not tree["ambiguous"]


def test_missing_try_number_goes_to_the_latest_attempt(tracker, unique):
    dag = f"try_{unique}"
    base = {"dag_id": dag, "execution_date": "2026-11-21T00:00:00Z", "task_id": "t"}
    evs = [
        event("task_attempt.end", {"state": "up_for_retry"}, context={**base, "try_number": "1"}, agent="airflow"),
        event("task_attempt.start", {"state": "running"}, context={**base, "try_number": "2"}, agent="airflow"),
        event("metric", {"key": "no_try", "value": 5}, context=base),
    ]
    assert tracker.post_events(evs).status_code == 202
    attempts = {a["try_number"]: a for a in _tree(tracker, dag)["task_attempts"]}
    assert set(attempts) == {1, 2}
    assert [m["key"] for m in attempts[2]["metrics"]] == ["no_try"] and attempts[1]["metrics"] == []


def test_a_child_that_arrives_first_is_moved_when_the_task_shows_up(tracker, unique):
    dag = f"early_{unique}"
    early = event("metric", {"key": "early", "value": 1},
                  context={"dag_id": dag, "execution_date": "2026-11-21", "task_id": "t"})
    assert tracker.post_events([early]).status_code == 202
    [placeholder] = _runs(tracker, dag)
    assert placeholder["placeholder"] is True
    start = event("task_attempt.start", {"state": "running"}, agent="airflow", context={
        "dag_id": dag, "execution_date": "2026-11-21T00:00:00+00:00", "task_id": "t", "try_number": "1",
        "dag_run_id": "scheduled__2026-11-21T00:00:00+00:00"})
    assert tracker.post_events([start]).status_code == 202
    [run] = _runs(tracker, dag)  # the placeholder run is gone
    assert run["placeholder"] is False and run["id"] != placeholder["id"]
    [attempt] = _tree(tracker, dag)["task_attempts"]
    assert attempt["try_number"] == 1 and [m["key"] for m in attempt["metrics"]] == ["early"]
    assert tracker.get(f"/api/v1/dag-runs/{placeholder['id']}").status_code == 404


def test_airflow3_run_without_logical_date_is_matched_by_run_id(tracker, unique):
    dag = f"af3_{unique}"
    run_id = "manual__2026-11-21T10:11:12.123456+00:00"
    evs = [
        event("dag_run.start", {"state": "running"}, context={"dag_id": dag, "dag_run_id": run_id}, agent="airflow"),
        event("task_attempt.start", {"state": "running"}, agent="airflow",
              context={"dag_id": dag, "dag_run_id": run_id, "task_id": "t", "try_number": "1"}),
        event("spark_app.start", {"name": "job"}, spark={"app_id": f"app-{unique}"}, agent="jvm",
              context={"dag_id": dag, "dag_run_id": run_id, "task_id": "t"}),
    ]
    assert tracker.post_events(evs).status_code == 202
    tree = _tree(tracker, dag)
    assert tree["run_id"] == run_id and tree["logical_date"] is None and tree["state"] == "running"
    [attempt] = tree["task_attempts"]
    assert attempt["try_number"] == 1 and attempt["spark_apps"][0]["app_id"] == f"app-{unique}"


def test_date_only_with_two_runs_that_day_is_flagged_ambiguous(tracker, unique):
    dag = f"amb_{unique}"
    evs = [
        event("dag_run.start", {"state": "running"}, context={"dag_id": dag, "execution_date": "2026-11-21T01:00:00Z"}),
        event("dag_run.start", {"state": "running"}, context={"dag_id": dag, "execution_date": "2026-11-21T13:00:00Z"}),
        event("metric", {"key": "m", "value": 1}, context={"dag_id": dag, "execution_date": "2026-11-21"}),
    ]
    assert tracker.post_events(evs).status_code == 202
    runs = _runs(tracker, dag)
    assert len(runs) == 2
    flagged = [r for r in runs if r["ambiguous"]]
    assert [r["logical_date"] for r in flagged] == ["2026-11-21T01:00:00.000000Z"]


def test_missing_uid_with_two_instances_is_not_guessed(tracker, unique):
    dag = f"uids_{unique}"
    evs = [
        event("dag.definition", {"dag_id": dag}, context={"uid": f"a{unique}"}, agent="syncer"),
        event("dag.definition", {"dag_id": dag}, context={"uid": f"b{unique}"}, agent="syncer"),
        event("metric", {"key": "m", "value": 1}, context={"dag_id": dag, "execution_date": "2026-11-21T00:00:00Z"}),
    ]
    assert tracker.post_events(evs).status_code == 202
    [run] = _runs(tracker, dag)
    assert run["uid"] is None
