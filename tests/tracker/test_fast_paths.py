"""The ingest and read fast paths agree with the plain ones (SQLite and PostgreSQL, in-process).

- Stages the JSON API gets as database-built JSON fragments equal the dicts Python callers get.
- Events are looked up by a 64-bit hash of their id: a hash collision must never drop a new event.
"""

from __future__ import annotations

import importlib

import orjson
from builders import event, full_run
from sqlalchemy import text

from runlink.tracker import ingest, queries
from runlink.tracker.db import Database

prepare_module = importlib.import_module("runlink.tracker.ingest.prepare")  # the package's `prepare` is the function


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
