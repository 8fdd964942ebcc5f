"""Linking under concurrency: one DAG's events, split into small batches in a random order and sent at the same
time to two tracker processes on one PostgreSQL database (each batch twice, so replays of one event race too),
give the same run trees over the API as one tracker fed them in one batch.

On PostgreSQL batches are stored in parallel (db.Database.write: a lock per dag_id, not one global lock), so this
is what keeps a relink of the DAG from reading another replica's half-written state.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from builders import event, full_run

from support.postgres import create_database, drop_database
from support.tracker import Tracker

DAG = "concurrent"


def _events() -> list[dict]:
    """Three runs of one DAG (a retry, date-only and try-less contexts that link across batches), another DAG
    sharing nothing, and a Spark application without Airflow context."""
    evs: list[dict] = []
    for day in (21, 22, 23):
        ts = f"2026-11-{day}T00:00:00+00:00"
        run = full_run(DAG, ts=ts, run_id=f"scheduled__{ts}", stages=3)
        for e in run:  # each run its own application
            if e.get("spark"):
                e["spark"] = {**e["spark"], "app_id": f"app-{DAG}-{day}"}
        evs += run
        base = {"dag_id": DAG, "execution_date": ts, "uid": "prod"}
        evs += [
            event("task_attempt.start", {"state": "running", "start_date": f"2026-11-{day}T02:00:00Z"},
                  agent="airflow", context={**base, "task_id": "transform", "try_number": "2"},
                  time=f"2026-11-{day}T02:00:00Z"),
            event("metric", {"key": "no_try", "value": day}, context={**base, "task_id": "transform"},
                  time=f"2026-11-{day}T02:00:01Z"),
            event("metric", {"key": "date_only", "value": day}, time=f"2026-11-{day}T02:00:02Z",
                  context={"dag_id": DAG, "execution_date": f"2026-11-{day}", "task_id": "transform"}),
        ]
    evs += full_run("other", stages=2)
    evs += [event("spark_app.start", {"name": "local"}, spark={"app_id": "local-1"}, agent="jvm"),
            event("spark_job.end", {"job_id": 3, "result": "failed"}, spark={"app_id": "local-1"}, agent="jvm"),
            event("spark_app.end", {"end_time": "2026-11-21T01:00:40Z", "exit_code": 1}, spark={"app_id": "local-1"},
                  agent="jvm", time="2026-11-21T01:00:40Z")]
    return evs


def _trees(tracker: Tracker) -> bytes:
    runs = tracker.get_json("/api/v1/dag-runs", limit=500)["items"]
    trees = sorted((tracker.get_json(f"/api/v1/dag-runs/{run['id']}") for run in runs),
                   key=lambda tree: orjson.dumps(tree, option=orjson.OPT_SORT_KEYS))
    return orjson.dumps(trees, option=orjson.OPT_SORT_KEYS | orjson.OPT_INDENT_2)


@pytest.fixture
def databases() -> list[str]:
    urls = [create_database(), create_database()]
    yield urls
    for url in urls:
        drop_database(url)


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2])
def test_one_dag_split_across_two_replicas_gives_the_tree_of_one(databases: list[str], tmp_path: Path,
                                                                 seed: int) -> None:
    events = _events()
    reference_db, shared_db = databases
    rng = random.Random(seed)
    batches: list[list[dict]] = []
    for _ in range(2):  # everything twice, in two different orders and cuts: replays race with their originals
        order = events[:]
        rng.shuffle(order)
        at = 0
        while at < len(order):
            size = rng.randint(1, 3)
            batches.append(order[at:at + size])
            at += size
    rng.shuffle(batches)

    single = Tracker(tmp_path / "single", reference_db)
    replicas = [Tracker(tmp_path / f"replica-{n}", shared_db, workers=2) for n in range(2)]
    try:
        single.start()
        assert single.post_events(events).status_code == 202
        reference = _trees(single)
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda r: r.start(), replicas))

        def send(index: int) -> int:
            answer = replicas[index % 2].post_events(batches[index])
            assert answer.status_code == 202, answer.text
            return answer.json()["accepted"]

        with ThreadPoolExecutor(8) as pool:
            accepted = sum(pool.map(send, range(len(batches))))
        assert accepted == len({e["id"] for e in events})  # each event stored once, the replays all duplicates
        assert len(orjson.loads(reference)) == 5  # three runs of the DAG, the other DAG's, the Spark app's own
        for replica in replicas:
            assert _trees(replica) == reference, replica.log_tail()
    finally:
        for tracker in (single, *replicas):
            tracker.stop()
