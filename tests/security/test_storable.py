"""Events the schema accepts but a column cannot hold: a 422 naming the event index and field, on SQLite and on
PostgreSQL, and nothing of the batch stored. Before tracker/storable.py each of these was a 500 (which agents
retry and spool: the poisoned spool of issue 15)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from runlink.protocol import make_event

APP = {"app_id": "app-storable"}
CTX = {"dag_id": "storable", "execution_date": "2026-11-21T00:00:00+00:00", "task_id": "t", "try_number": "1"}


def _ev(type_: str, payload: dict[str, Any], **kw: Any) -> dict[str, Any]:
    kw.setdefault("time", "2026-11-21T01:00:00Z")
    return make_event(type_, payload, event_id=f"st-{uuid.uuid4().hex}", **kw)


def _stage(**changes: Any) -> dict[str, Any]:
    payload = {"stage_id": 1, "attempt_id": 0, "status": "succeeded", "metrics": {"executor_run_time_ms": 5}}
    return _ev("spark_stage.completed", {**payload, **changes}, spark=APP, agent="jvm")


def _nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        node = {"n": node}
    return node


# (case id, event, the field the 422 must name)
REFUSED = [
    ("int64-overflow", _stage(metrics={"executor_run_time_ms": 2**63}), "payload.metrics.executor_run_time_ms"),
    ("uint64-max", _stage(metrics={"input_bytes": 2**64 - 1}), "payload.metrics.input_bytes"),
    ("past-uint64-parsed-as-float", _stage(metrics={"input_bytes": 2**70}), "payload.metrics.input_bytes"),
    ("int32-column", _stage(stage_id=2**31), "payload.stage_id"),
    ("int32-negative", _stage(num_tasks=-(2**31) - 1), "payload.num_tasks"),
    ("job-id", _ev("spark_job.end", {"job_id": 2**40, "result": "failed"}, spark=APP), "payload.job_id"),
    ("pid", _ev("task_attempt.start", {"pid": 2**33}, context=CTX), "payload.pid"),
    ("source-pid", {**_ev("metric", {"key": "k", "value": 1}), "source": {"agent": "python", "pid": 2**35}},
     "source.pid"),
    ("try-number-string", _ev("metric", {"key": "k", "value": 1}, context={**CTX, "try_number": "99999999999"}),
     "context.try_number"),
    ("dataset-rows", _ev("dataset", {"operation": "read", "path": "/p", "rows": 2**64 - 1}), "payload.rows"),
    ("sql-output-rows", _ev("sql_query", {"success": True, "outputs": [{"operation": "write", "rows": 2**63}]},
                            spark=APP), "payload.outputs.0.rows"),
    ("time-past-9999", _ev("metric", {"key": "k", "value": 1}, time="9999-12-31T23:59:59-14:00"), "time"),
    ("time-before-1", _ev("metric", {"key": "k", "value": 1}, time="0001-01-01T00:00:00+14:00"), "time"),
    ("payload-instant", _ev("task_attempt.end", {"end_date": "9999-12-31T23:59:59-01:00"}, context=CTX),
     "payload.end_date"),
    ("context-instant", _ev("metric", {"key": "k", "value": 1},
                            context={**CTX, "execution_date": "9999-12-31T23:00:00-05:00"}),
     "context.execution_date"),
    ("deep-params", _ev("task_attempt.start", {"params": _nested(300)}, context=CTX), "payload.params.n.n"),
    ("deep-conf-65", _ev("dag_run.start", {"conf": _nested(70)}, context=CTX), "payload.conf.n.n"),
    ("inputs-a-number", _ev("sql_query", {"success": True, "inputs": 5}, spark=APP), "payload.inputs"),
    ("nul-in-log", _ev("log", {"text": "a\x00b"}, context=CTX), "payload.text"),
    ("nul-in-metric-key", _ev("metric", {"key": "k\x00", "value": 1}), "payload.key"),
    ("nul-in-params-key", _ev("task_attempt.end", {"params": {"a\x00": 1}}, context=CTX), "payload.params.a\\u0000"),
    ("nul-in-dag-id", _ev("metric", {"key": "k", "value": 1}, context={**CTX, "dag_id": "d\x00"}), "context.dag_id"),
]


@pytest.mark.parametrize(("event", "field"), [pytest.param(e, f, id=i) for i, e, f in REFUSED])
def test_unstorable_value_is_a_422_naming_index_and_field_and_nothing_is_stored(tracker: Any, event: dict,
                                                                                  field: str) -> None:
    good = _ev("metric", {"key": "storable-good", "value": 1}, context=CTX)
    response = tracker.post_events([good, event])
    assert response.status_code == 422, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    assert detail["index"] == 1, detail
    assert detail["field"] is not None and detail["field"].startswith(field), detail
    # the good event of the refused batch was not stored: sent alone now, it is new
    again = tracker.post_events([good])
    assert again.status_code == 202 and again.json() == {"accepted": 1, "duplicates": 0}, again.text


def test_values_at_the_edges_of_the_columns_are_stored(tracker: Any) -> None:
    """The bounds are the columns' own: int32 max in a 32-bit column, int64 max in a 64-bit one, 64 levels of
    params, years 1 and 9999 — all stored and readable back on both backends; `1.0` in an integer field too."""
    app = {"app_id": f"app-edge-{uuid.uuid4().hex[:8]}"}
    events = [
        _ev("spark_stage.completed", {"stage_id": 2**31 - 1, "attempt_id": -(2**31), "status": "succeeded",
                                      "num_tasks": 2**31 - 1,
                                      "metrics": {"executor_run_time_ms": 2**63 - 1, "input_bytes": -(2**63)}},
            spark=app, agent="jvm"),
        _ev("spark_job.start", {"job_id": 1.0, "stage_ids": [2**63 - 1], "sql_execution_id": 2**63 - 1}, spark=app),
        _ev("task_attempt.end", {"params": _nested(60), "pid": 2**31 - 1, "end_date": "9999-12-31T23:59:59Z"},
            context={**CTX, "dag_id": f"edge-{uuid.uuid4().hex[:8]}", "try_number": str(2**31 - 1)}),
        _ev("metric", {"key": "edge", "value": 2**64 - 1}, time="0001-01-01T00:00:00Z"),
        _ev("task_attempt.start", {"params": {"a": [2**64 - 1, -(2**63)]}}, context=CTX),
    ]
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text[:1000]
    assert response.json()["accepted"] == len(events)
    detail = tracker.get_json(f"/api/v1/spark-apps/{_app_pk(app['app_id'])}")
    assert any(s["stage_id"] == 2**31 - 1 for s in _stages(detail)), str(detail)[:2000]


def test_huge_float_metric_values_are_stored_and_read_back(tracker: Any) -> None:
    """An integral float past 2^64 (1e20, -1e300) is a valid metric value: stored, and the run tree that shows it
    reads back (it used to be turned into a 300-digit int that the JSON writer refused: a 500 on every read)."""
    dag_id = f"floats-{uuid.uuid4().hex[:8]}"
    context = {**CTX, "dag_id": dag_id}
    events = [_ev("metric", {"key": f"m{n}", "value": value}, context=context)
              for n, value in enumerate([1e20, -1e300, 2.0**53, 3.0])]
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text[:500]
    (run,) = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
    values = {m["key"]: m["value"] for a in tree["task_attempts"] for m in a["metrics"]}
    assert values == {"m0": 1e20, "m1": -1e300, "m2": 2.0**53, "m3": 3}, values


def _app_pk(app_id: str) -> str:
    from runlink import ids

    return ids.spark_app_id(app_id, None)


def _stages(detail: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "stage_id" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(detail)
    return found


def test_openlineage_events_that_translate_to_unstorable_values_are_a_422(tracker: Any) -> None:
    """The OpenLineage route stores through the same ingest: a Spark SQL run's rowCount past int64 is a 422
    naming the OpenLineage event (index 1), not a 500; nothing of the request is stored."""
    import requests

    app_run, sql_run = str(uuid.uuid4()), str(uuid.uuid4())
    app_id = f"app-ol-{app_run[:8]}"
    app = {"eventType": "START", "eventTime": "2026-01-01T00:00:00+00:00", "producer": "test",
           "run": {"runId": app_run, "facets": {"spark_applicationDetails": {"applicationId": app_id}}},
           "job": {"namespace": "n", "name": "ol_app",
                   "facets": {"jobType": {"integration": "SPARK", "jobType": "APPLICATION"}}}}
    query = {"eventType": "COMPLETE", "eventTime": "2026-01-01T00:00:05+00:00", "producer": "test",
             "run": {"runId": sql_run, "facets": {"parent": {"run": {"runId": app_run},
                                                             "job": {"namespace": "n", "name": "ol_app"}}}},
             "job": {"namespace": "n", "name": "ol_app.save",
                     "facets": {"jobType": {"integration": "SPARK", "jobType": "SQL_JOB"}}},
             "outputs": [{"namespace": "file", "name": "/o",
                          "outputFacets": {"outputStatistics": {"rowCount": 2**64 - 1}}}]}
    response = requests.post(tracker.url + "/api/v1/lineage", json=[app, query], headers=tracker.headers(),
                             timeout=60)
    assert response.status_code == 422, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    assert detail["index"] == 1 and detail["field"].endswith("rows"), detail
    assert tracker.get(f"/api/v1/spark-apps/{_app_pk(app_id)}").status_code == 404  # nothing stored


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_extreme_but_storable_values_read_back_in_the_api_and_the_ui(tracker_factory: Any, backend: str) -> None:
    """Years 1 and 9999, negative counts and int64 edges, a -1e300 metric: stored, and every page that shows them
    answers 200 (year 1 was stored as "1-01-01...", unsortable and unparsable: the DAG run page failed)."""
    from runlink import ids

    tracker = tracker_factory(backend=backend, open_reads=True)
    app = {"app_id": f"app-extreme-{uuid.uuid4().hex[:8]}"}
    dag_id = f"extreme-{uuid.uuid4().hex[:8]}"
    ctx = {"dag_id": dag_id, "execution_date": "9999-12-31T23:59:59Z", "task_id": "t", "try_number": "1"}
    events = [
        _ev("spark_stage.completed", {"stage_id": -5, "attempt_id": -1, "status": "failed", "num_tasks": -3,
                                      "failed_tasks": -(2**31), "submission_time": "9999-12-31T23:59:59Z",
                                      "completion_time": "0001-01-01T00:00:00Z",
                                      "metrics": {"executor_run_time_ms": -(2**63), "input_bytes": 2**63 - 1,
                                                  "peak_execution_memory_bytes": -1}},
            spark=app, context=ctx, time="0001-01-01T00:00:00Z"),
        _ev("spark_job.start", {"job_id": -(2**31), "stage_ids": [-5]}, spark=app, context=ctx),
        _ev("task_attempt.end", {"state": "failed", "start_date": "9999-12-31T23:59:59Z",
                                 "end_date": "0001-01-01T00:00:00Z", "duration_s": -1e300, "pid": -1,
                                 "max_tries": -(2**31)}, context=ctx),
        _ev("dataset", {"operation": "read", "path": "/x", "rows": -(2**63), "bytes": 2**63 - 1}, context=ctx),
        _ev("metric", {"key": "m", "value": -1e300}, context=ctx),
    ]
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text[:500]
    (run,) = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]
    tree = tracker.get_json(f"/api/v1/dag-runs/{run['id']}")
    app_pk = ids.spark_app_id(app["app_id"], None)
    pages = [f"/api/v1/spark-apps/{app_pk}", f"/ui/spark-apps/{app_pk}", f"/ui/dag-runs/{run['id']}",
             f"/ui/dags/{dag_id}", "/ui/dags", "/ui",
             *(f"/ui/task-attempts/{a['id']}" for a in tree["task_attempts"])]
    for page in pages:
        answer = tracker.get(page)
        assert answer.status_code == 200, (page, answer.status_code, answer.text[:300], tracker.log()[-2000:])
    attempt = tree["task_attempts"][0]
    assert attempt["end_date"] == "0001-01-01T00:00:00.000000Z", attempt  # stored sortable, zero-padded
