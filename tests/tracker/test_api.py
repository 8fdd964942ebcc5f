"""The tracker over HTTP (a real `runlink server` on SQLite and on PostgreSQL): protocol round trip,
every bad-input answer, token scopes, idempotent replay, query API, OpenAPI, Prometheus, CLI."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys

import pytest
import requests
from builders import event, full_run

from runlink import ids
from runlink.context import normalize


def run_of(tracker, dag_id: str) -> dict:
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)
    assert len(page["items"]) == 1, page
    return tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")


def test_round_trip_gives_the_whole_tree(tracker, unique):
    dag = f"etl_{unique}"
    evs = full_run(dag)
    response = tracker.post_events(evs, gzip=True)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": len(evs), "duplicates": 0}
    tree = run_of(tracker, dag)
    assert tree["state"] == "success" and tree["uid"] == "prod" and tree["conf"] == {"a": 1}
    assert tree["logical_date"] == "2026-11-21T00:00:00.000000Z"
    assert tree["start_date"] == "2026-11-21T00:00:05.000000Z" and tree["end_date"] == "2026-11-21T01:01:05.000000Z"
    [attempt] = tree["task_attempts"]
    assert (attempt["task_id"], attempt["try_number"], attempt["state"]) == ("transform", 1, "success")
    assert attempt["params"] == {"x": "1"} and attempt["operator"] == "SparkSubmitOperator"
    assert [(m["key"], m["value"]) for m in attempt["metrics"]] == [("rows", 10)]  # sent with `ds` and no try
    assert attempt["datasets"][0]["path"] == "/data/out.csv" and attempt["datasets"][0]["schema"][0]["name"] == "a"
    assert attempt["log"]["text"] == "hello\n"
    [app] = attempt["spark_apps"]
    assert app["app_id"] == f"app-{dag}" and app["id"] == ids.spark_app_id(f"app-{dag}")
    assert app["name"] == "transform-job" and app["exit_code"] == 0
    assert [j["result"] for j in app["jobs"]] == ["succeeded"]
    assert [s["stage_id"] for s in app["stages"]] == [0, 1, 2]
    assert app["stages"][1]["metrics"]["executor_run_time_ms"] == 101
    assert app["executors"][0]["executor_id"] == "driver"
    [query] = app["queries"]
    assert query["inputs"][0]["path"] == "/data/in.parquet" and query["outputs"][0]["table"] == "db.out"
    one = tracker.get_json(f"/api/v1/task-attempts/{attempt['id']}")
    assert one["spark_apps"][0]["stages"] == app["stages"] and one["dag_run"]["id"] == tree["id"]
    spark = tracker.get_json(f"/api/v1/spark-apps/{app['id']}")
    assert spark["task_attempt_pk"] == attempt["id"] and len(spark["stages"]) == 3


def test_raw_events_are_stored(tracker, unique):
    evs = full_run(f"raw_{unique}")
    assert tracker.post_events(evs[:2]).status_code == 202
    assert tracker.post_events(evs[1:3]).json() == {"accepted": 1, "duplicates": 1}  # a replay in a new batch
    from sqlalchemy import create_engine

    from runlink.tracker.ingest import raw_events

    engine = create_engine(tracker.db_url)
    with engine.connect() as conn:
        raw = raw_events(conn, [e["id"] for e in evs[:3]] + ["no-such-event"])
    engine.dispose()
    assert raw == {e["id"]: e for e in evs[:3]}  # each from the batch that stored it


def test_replay_changes_nothing(tracker, unique):
    dag = f"replay_{unique}"
    evs = full_run(dag)
    assert tracker.post_events(evs).json()["accepted"] == len(evs)
    before = run_of(tracker, dag)
    again = tracker.post_events(evs)
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": len(evs)}
    half = tracker.post_events(evs[::2] + [evs[0]])  # duplicates inside one batch too
    assert half.json() == {"accepted": 0, "duplicates": len(evs[::2]) + 1}
    assert run_of(tracker, dag) == before


def _stored(tracker, event_id: str) -> bool:
    """Was this event stored? Re-posting it alone answers: a stored one is a duplicate."""
    return tracker.post_events([event("agent_health", {}, event_id=event_id)]).json()["duplicates"] == 1


def test_bad_json_is_400_and_stores_nothing(tracker):
    assert tracker.post_raw(b"{not json", {"Content-Type": "application/json"}).status_code == 400


def test_bad_gzip_is_400(tracker):
    response = tracker.post_raw(b"\x1f\x8b\x08garbage", {"Content-Encoding": "gzip"})
    assert response.status_code == 400
    truncated = gzip.compress(json.dumps({"events": [event("metric", {"key": "k", "value": 1})]}).encode())[:-10]
    assert tracker.post_raw(truncated, {"Content-Encoding": "gzip"}).status_code == 400


def test_body_over_the_cap_is_413(tracker):
    assert tracker.post_raw(b" " * (16 * 1024 * 1024 + 1)).status_code == 413


def test_decompressed_body_over_the_cap_is_413(tracker):
    bomb = gzip.compress(b" " * (64 * 1024 * 1024 + 1), 9)
    assert len(bomb) < 1024 * 1024
    assert tracker.post_raw(bomb, {"Content-Encoding": "gzip"}).status_code == 413


def test_invalid_event_is_422_with_index_and_field_and_stores_nothing(tracker, unique):
    good = event("metric", {"key": "ok", "value": 1}, context={"dag_id": f"bad_{unique}"})
    bad = event("metric", {"value": 1}, context={"dag_id": f"bad_{unique}"})
    response = tracker.post_events([good, bad])
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail["index"] == 1 and detail["field"] == "payload" and "key" in detail["message"]
    assert tracker.get_json("/api/v1/dag-runs", dag_id=f"bad_{unique}")["items"] == []
    assert not _stored(tracker, good["id"]) or pytest.fail("the good event of a rejected batch was stored")


def test_unparseable_context_date_is_422_naming_the_field(tracker, unique):
    good = event("metric", {"key": "ok", "value": 1})
    bad = event("metric", {"key": "x", "value": 1}, context={"dag_id": "d", "execution_date": "yesterday"})
    response = tracker.post_events([good, good | {"id": good["id"] + "b"}, bad])
    assert response.status_code == 422
    assert response.json()["detail"] == {"message": response.json()["detail"]["message"], "index": 2,
                                         "field": "context.execution_date"}
    assert not _stored(tracker, good["id"] + "b")


def test_wrong_type_field_is_named(tracker):
    stage = event("spark_stage.completed", {"stage_id": "one", "attempt_id": 0, "status": "succeeded"},
                  spark={"app_id": "a"})
    detail = tracker.post_events([stage]).json()["detail"]
    assert detail["index"] == 0 and detail["field"] == "payload.stage_id"


def test_tokens_and_scopes(tracker):
    batch = [event("agent_health", {})]
    assert tracker.post_events(batch, token=None).status_code == 401
    assert tracker.post_events(batch, token="rl_not-a-token").status_code == 401
    assert tracker.get("/api/v1/dag-runs", token=None).status_code == 401
    ingest, read = tracker.make_token("ingest"), tracker.make_token("read")
    assert tracker.post_events(batch, token=ingest).status_code == 202
    assert tracker.get("/api/v1/dag-runs", token=ingest).status_code == 403
    assert tracker.post_events([event("agent_health", {})], token=read).status_code == 403
    assert tracker.get("/api/v1/dag-runs", token=read).status_code == 200
    denied = requests.post(tracker.url + "/api/v1/tokens", json={"scope": "admin"}, headers=tracker.headers(read),
                           timeout=30)
    assert denied.status_code == 403
    assert tracker.get("/api/v1/dag-runs").status_code == 200  # admin reads


def test_token_file_is_private_and_tokens_are_stored_hashed(tracker):
    assert (tracker.home / "token").stat().st_mode & 0o777 == 0o600
    from sqlalchemy import create_engine, text

    engine = create_engine(tracker.db_url)
    with engine.connect() as conn:
        stored = [row[0] for row in conn.execute(text("SELECT token_hash FROM tokens"))]
    engine.dispose()
    assert tracker.token not in stored and all(len(h) == 64 for h in stored)
    assert tracker.log().count(tracker.token) == 0


def test_open_mode_allows_reads_without_token_but_not_ingest(tracker_factory):
    open_tracker = tracker_factory(open_reads=True)
    assert open_tracker.get("/api/v1/dag-runs", token=None).status_code == 200
    assert open_tracker.post_events([event("agent_health", {})], token=None).status_code == 401


def test_run_list_filters_and_cursor_pagination(tracker, unique):
    dag = f"page_{unique}"
    evs = []
    for day in range(1, 6):
        ctx = {"dag_id": dag, "execution_date": f"2026-03-0{day}T00:00:00+00:00", "uid": f"u{unique}"}
        state = "failed" if day == 3 else "success"
        evs.append(event("dag_run.end", {"state": state}, context=ctx, agent="airflow"))
    assert tracker.post_events(evs).status_code == 202
    seen, cursor = [], None
    while True:
        page = tracker.get_json("/api/v1/dag-runs", dag_id=dag, limit=2, **({"cursor": cursor} if cursor else {}))
        seen += [r["logical_date"][:10] for r in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"2026-03-0{d}" for d in range(5, 0, -1)]
    assert [r["state"] for r in tracker.get_json("/api/v1/dag-runs", dag_id=dag, state="failed")["items"]] == ["failed"]
    assert len(tracker.get_json("/api/v1/dag-runs", dag_id=dag, since="2026-03-04")["items"]) == 2
    assert len(tracker.get_json("/api/v1/dag-runs", instance=f"u{unique}")["items"]) == 5
    assert tracker.get("/api/v1/dag-runs", cursor="garbage").status_code == 422
    assert tracker.get("/api/v1/dag-runs/nope").status_code == 404


def test_openapi_serves_the_protocol_schema(tracker):
    spec = tracker.get_json("/openapi.json")
    body = spec["paths"]["/api/v1/events"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/EventBatch"}
    schemas = spec["components"]["schemas"]
    assert schemas["EventBatch"]["properties"]["events"]["items"] == {"$ref": "#/components/schemas/event"}
    assert "payload.spark_stage.completed" in schemas and "stage_metrics" in schemas
    assert "#/definitions/" not in json.dumps(spec)


def test_prometheus_metrics(tracker):
    tracker.post_events([event("agent_health", {})])
    tracker.post_raw(b"nope")
    text = tracker.get("/metrics").text
    assert "runlink_events_ingested_total" in text
    assert 'runlink_batches_rejected_total{reason="400"}' in text
    assert "runlink_ingest_latency_seconds_bucket" in text


def test_spark_app_without_airflow_context_is_a_run_of_its_own(tracker, unique):
    app = {"app_id": f"local-{unique}"}
    evs = [
        event("spark_app.start", {"name": f"notebook {unique}"}, spark=app, agent="jvm", time="2026-05-01T10:00:00Z"),
        event("spark_stage.completed", {"stage_id": 0, "attempt_id": 0, "status": "succeeded"}, spark=app,
              agent="jvm"),
        event("spark_app.end", {"exit_code": 0}, spark=app, agent="jvm", time="2026-05-01T10:05:00Z"),
    ]
    assert tracker.post_events(evs).status_code == 202
    tree = run_of(tracker, f"spark:notebook {unique}")
    assert tree["synthetic"] and tree["run_id"] == f"local-{unique}" and tree["state"] == "success"
    [attempt] = tree["task_attempts"]
    assert attempt["task_id"] == "spark" and attempt["spark_apps"][0]["stages"][0]["stage_id"] == 0
    assert attempt["spark_apps"][0]["context_id"] == ids.context_id(
        normalize({"dag_id": f"spark:notebook {unique}", "dag_run_id": f"local-{unique}", "task_id": "spark"}))


def _cli(tracker, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": tracker.token,
           "RUNLINK_HOME": str(tracker.home)}
    return subprocess.run([sys.executable, "-m", "runlink", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_cli_runs_list_and_show(tracker, unique):
    dag = f"cli_{unique}"
    tracker.post_events(full_run(dag))
    listing = _cli(tracker, "runs", "list", "--dag-id", dag, "--json")
    assert listing.returncode == 0, listing.stderr
    [row] = json.loads(listing.stdout)
    assert row["dag_id"] == dag and row["state"] == "success"
    table = _cli(tracker, "runs", "list", "--dag-id", dag)
    assert dag in table.stdout and "success" in table.stdout
    shown = _cli(tracker, "runs", "show", dag)
    assert shown.returncode == 0, shown.stderr
    assert "transform try 1 [success]" in shown.stdout and "stages 3" in shown.stdout
    by_run_id = _cli(tracker, "runs", "show", dag, "scheduled__2026-11-21T00:00:00+00:00", "--json")
    assert json.loads(by_run_id.stdout)["id"] == row["id"]
    missing = _cli(tracker, "runs", "show", f"nothing_{unique}")
    assert missing.returncode == 1


def test_cli_token_create(tracker):
    created = _cli(tracker, "token", "create", "--scope", "read", "--db", tracker.db_url, "--home",
                   str(tracker.home))
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip()
    assert tracker.get("/api/v1/dag-runs", token=token).status_code == 200
    assert tracker.post_events([event("agent_health", {})], token=token).status_code == 403
