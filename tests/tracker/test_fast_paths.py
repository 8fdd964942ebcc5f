"""The ingest and read fast paths agree with the plain ones (SQLite and PostgreSQL, in-process).

- Stages the JSON API gets as database-built JSON fragments equal the dicts Python callers get.
- Events are looked up by a 64-bit hash of their id: a hash collision must never drop a new event.
- On PostgreSQL, stages and jobs above an application's stored ids are plain inserts: the rest still merge by stamp.
"""

from __future__ import annotations

import importlib
import threading
import time

import orjson
from builders import event, full_run, stage
from sqlalchemy import text

from runlink.tracker import ingest, queries, sqlutil
from runlink.tracker.db import Database
from runlink.tracker.ingest.rows import collect
from runlink.tracker.ingest.store import lock_keys

prepare_module = importlib.import_module("runlink.tracker.ingest.prepare")  # the package's `prepare` is the function
store_module = importlib.import_module("runlink.tracker.ingest.store")  # as is its `store`


def _store(db: Database, batch: list[dict]) -> tuple[int, int]:
    prepared = ingest.prepare(batch)
    with db.write() as conn:
        return ingest.store(conn, prepared)


def test_json_stages_equal_dict_stages(database):
    dag = "fast_json"
    evs = full_run(dag, stages=5)
    evs.append(event("spark_stage.completed", {"stage_id": 7, "attempt_id": 1, "status": "failed", "name": 'q"uote\n',
                                               "failure_reason": "boom \\ \u00e9", "metrics": {}},
                     spark={"app_id": f"app-{dag}"}, agent="jvm"))
    _store(database, evs)
    with database.read() as conn:
        pk = queries.latest_run_pk(conn, dag)
        plain = queries.run_tree(conn, pk)
        fast = orjson.loads(orjson.dumps(queries.run_tree(conn, pk, raw_json=True)))
    stages = [s for a in plain["task_attempts"] for app in a["spark_apps"] for s in app["stages"]]
    assert len(stages) == 6 and any(s["name"] == 'q"uote\n' for s in stages)
    assert fast == orjson.loads(orjson.dumps(plain))


def test_id_hash_collision_keeps_both_events(database, monkeypatch):
    dag = "fast_hash"
    ctx = {"dag_id": dag, "execution_date": "2026-11-21T00:00:00+00:00", "task_id": "t", "try_number": "1"}
    first = event("metric", {"key": "a", "value": 1}, context=ctx)
    second = event("metric", {"key": "b", "value": 2}, context=ctx)
    monkeypatch.setattr(prepare_module, "id_hash", lambda _event_id: 42)  # every id collides
    assert _store(database, [first]) == (1, 0)
    assert _store(database, [second, first]) == (1, 1)  # the new one is stored, the replay is not
    assert _store(database, [second]) == (0, 1)
    with database.read() as conn:
        rows = conn.execute(text("SELECT id FROM events WHERE id_hash = 42 ORDER BY id")).scalars().all()
    assert rows == sorted([first["id"], second["id"]])


def test_new_stage_and_job_ids_are_plain_inserts_and_the_rest_still_merge(database, monkeypatch):
    dag = "fast_fresh"
    task = {"dag_id": dag, "execution_date": "2026-11-21T00:00:00+00:00", "task_id": "t", "try_number": "1"}
    app, other = {"app_id": f"app-{dag}"}, {"app_id": f"app-{dag}-2"}
    early, mid, late = "2026-11-21T01:00:05Z", "2026-11-21T01:00:10Z", "2026-11-21T01:00:20Z"

    def job(type_: str, job_id: int, time: str) -> dict:
        return event(type_, {"job_id": job_id}, context=task, spark=app, agent="jvm", time=time)

    plain: list[tuple[str, list]] = []
    insert_rows = sqlutil.insert_rows

    def recording(conn, table, rows, columns):  # noqa: ANN001, ANN202
        if table.name in ("spark_stages", "spark_jobs"):
            plain.append((table.name, sorted(row[1] for row in rows)))
        insert_rows(conn, table, rows, columns)

    monkeypatch.setattr(sqlutil, "insert_rows", recording)
    assert _store(database, [*(stage(app, n, context=task, time=mid) for n in range(3)),
                             job("spark_job.start", 0, mid)])[0] == 4
    def renamed(stage_id: int, time: str, name: str) -> dict:
        report = stage(app, stage_id, context=task, time=time)
        report["payload"]["name"] = name
        return report

    batch = [renamed(1, late, "one, later"), renamed(2, early, "two, earlier"),
             stage(app, 4, context=task, time=mid), stage(app, 3, context=task, time=mid),
             stage(other, 0, context=task, time=mid), job("spark_job.end", 0, late), job("spark_job.start", 1, late)]
    prepared = ingest.prepare(batch)
    rows = collect(prepared)
    assert {"app:" + ingest.spark_app_pk(a["app_id"], None) for a in (app, other)} <= lock_keys(prepared, rows)
    with database.write(lock_keys(prepared, rows)) as conn:
        assert ingest.store(conn, prepared, rows) == (7, 0)
    assert _store(database, [stage(app, 3, context=task, attempt_id=1, time=late)]) == (1, 0)  # a retried stage

    with database.read() as conn:
        stages = conn.execute(text(
            "SELECT a.app_id, s.stage_id, s.attempt_id, s.name FROM spark_stages s JOIN spark_apps a "
            "ON a.id = s.spark_app_pk WHERE a.app_id LIKE :p ORDER BY 1, 2, 3"), {"p": f"app-{dag}%"}).all()
        jobs = conn.execute(text(
            "SELECT j.job_id, j.start_stamp IS NOT NULL, j.end_stamp IS NOT NULL FROM spark_jobs j JOIN spark_apps a "
            "ON a.id = j.spark_app_pk WHERE a.app_id = :a ORDER BY 1"), {"a": app["app_id"]}).all()
    assert [tuple(r) for r in stages] == [
        (app["app_id"], 0, 0, "stage 0"), (app["app_id"], 1, 0, "one, later"), (app["app_id"], 2, 0, "stage 2"),
        (app["app_id"], 3, 0, "stage 3"), (app["app_id"], 3, 1, "stage 3"), (app["app_id"], 4, 0, "stage 4"),
        (other["app_id"], 0, 0, "stage 0")]
    assert [tuple(r) for r in jobs] == [(0, True, True), (1, True, False)]
    if database.sqlite:  # an upsert there costs what an insert does: no read for it, every row merges
        assert plain == []
    else:  # new applications and ids above the stored ones; stages 1 and 2 and the retry merged by stamp
        assert plain == [("spark_jobs", [0]), ("spark_stages", [0, 1, 2]), ("spark_jobs", [1]),
                         ("spark_stages", [0, 3, 4])]


def test_new_stages_of_one_app_sent_for_two_dags_at_once_never_collide(database, monkeypatch):
    """Two batches with the same application's new stage ids, under two DAGs' contexts (so no shared DAG lock), are
    stored at the same time, the first held open after its read of the stored ids: the application's own lock makes
    the second read them after the first commits, never insert them again (PostgreSQL refuses a duplicate key)."""
    app = {"app_id": "app-fast-race"}
    contexts = [{"dag_id": f"fast_race_{side}", "execution_date": "2026-11-21T00:00:00+00:00", "task_id": "t",
                 "try_number": "1"} for side in "ab"]
    above = store_module._above

    def slow_above(maxima, column):  # noqa: ANN001, ANN202 - the first batch waits here, its transaction open
        if threading.current_thread().name == "first":
            time.sleep(0.3)
        return above(maxima, column)

    monkeypatch.setattr(store_module, "_above", slow_above)
    errors: list[BaseException] = []
    for round_ in range(3):
        base = 10 * round_
        batches = [[stage(app, base + n, context=contexts[0]) for n in range(5)],
                   [stage(app, base + n, context=contexts[1], time="2026-11-21T01:00:20Z") for n in range(3, 8)]]

        def send(batch: list[dict]) -> None:
            prepared = ingest.prepare(batch)
            rows = collect(prepared)
            try:
                database.transact(lock_keys(prepared, rows), lambda conn: ingest.store(conn, prepared, rows))
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        first = threading.Thread(target=send, args=(batches[0],), name="first")
        second = threading.Thread(target=send, args=(batches[1],), name="second")
        first.start()
        time.sleep(0.1)  # the first batch is past its read (and asleep) when the second starts: no sync is missed
        second.start()
        first.join(60)
        second.join(60)
    assert errors == []
    with database.read() as conn:
        stored = conn.execute(text(
            "SELECT s.stage_id, s.completion_time FROM spark_stages s JOIN spark_apps a ON a.id = s.spark_app_pk "
            "WHERE a.app_id = :a ORDER BY 1"), {"a": app["app_id"]}).all()
    assert [row[0] for row in stored] == [10 * r + n for r in range(3) for n in range(8)]
    assert all(row[1].startswith("2026-11-21T01:00:20") for row in stored if row[0] % 10 >= 3)  # the later report
