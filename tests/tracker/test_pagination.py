"""Keyset pagination of every list (DAG runs, DAGs, a DAG's runs, Spark applications, datasets, alerts, instances),
over HTTP on SQLite and PostgreSQL: walking all pages (small ones) returns each
row once, in the listing's order, and the same walked backwards with `previous`; rows inserted while a walk is under
way (newer than its cursor) never make a row appear twice; a cursor the server did not make is a 422; the UI pages
link to the next page.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
import requests
from builders import event, full_run

from support.postgres import BACKENDS, create_database, drop_database
from support.tracker import Tracker
from support.waiting import wait_for

DAGS = [f"pg_dag_{n}" for n in range(7)]
RUNS_PER_DAG = 4


def _run_events(dag_id: str, day: int, tag: str = "") -> list[dict]:
    """One run of `dag_id` on 2026-10-<day> with its own Spark app and an output table of its own."""
    ts = f"2026-10-{day:02d}T00:00:00+00:00"
    events = full_run(dag_id, ts=ts, run_id=f"scheduled__{ts}{tag}", stages=1)
    app = {"app_id": f"app-{dag_id}-{day}{tag}"}
    for e in events:
        if e.get("spark"):
            e["spark"] = app
        if e["type"] == "spark_app.start":
            e["payload"]["start_time"] = f"2026-10-{day:02d}T01:00:00Z"  # some apps share a start: the id breaks ties
    task = {"dag_id": dag_id, "execution_date": ts, "dag_run_id": f"scheduled__{ts}{tag}", "uid": "prod",
            "task_id": "transform", "try_number": "1"}
    events.append(event("sql_query", {"execution_id": 2, "action": "save", "duration_ms": 5, "success": True,
                                      "outputs": [{"operation": "write", "table": f"db.out_{dag_id}_{day}{tag}"}]},
                        context=task, spark=app, agent="pyspark"))
    return events


@pytest.fixture(scope="module", params=BACKENDS)
def tracker(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Tracker:
    url = create_database() if request.param == "postgresql" else None
    server = Tracker(tmp_path_factory.mktemp("pagination"), url).start()
    try:
        events = [e for n, dag_id in enumerate(DAGS) for day in range(1, RUNS_PER_DAG + 1)
                  for e in _run_events(dag_id, day + n)]
        answer = server.post_events(events)
        assert answer.status_code == 202, answer.text
        yield server
    finally:
        server.stop()
        if url:
            drop_database(url)


def _walk(fetch: Callable[[str | None], dict[str, Any]], *, key: str = "next") -> list[dict[str, Any]]:
    """Every page of a listing, following `key` from the first page (at most 200 pages)."""
    pages = [fetch(None)]
    while pages[-1].get(key) and len(pages) < 200:
        pages.append(fetch(pages[-1][key]))
    return pages


def _items(pages: list[dict[str, Any]], field: str = "items") -> list[dict[str, Any]]:
    return [item for page in pages for item in page[field]]


def _check_walk(tracker: Tracker, path: str, sort: Callable[[dict], Any], expected: int, *, field: str = "items",
                ident: str = "id", newest_first: bool = False, **params: Any) -> list[dict]:
    """Forward walk in small pages = the whole listing in order, each row once; the backward walk from the last
    page gives the same rows."""
    pages = _walk(lambda cursor: tracker.get_json(path, **params, **({"cursor": cursor} if cursor else {})))
    rows = _items(pages, field)
    ids = [r[ident] for r in rows]
    assert len(ids) == len(set(ids)) == expected, ids
    assert rows == sorted(rows, key=sort, reverse=newest_first), [r[ident] for r in rows]
    assert len(pages) > 2 and all(len(p[field]) <= params["limit"] for p in pages)
    assert pages[0].get("previous") is None and pages[-1]["next"] is None
    back = [pages[-1]]
    while back[-1].get("previous"):
        back.append(tracker.get_json(path, **params, cursor=back[-1]["previous"]))
    assert [r[ident] for page in reversed(back) for r in page[field]] == ids
    return rows


def test_dag_runs_newest_first(tracker: Tracker) -> None:
    runs = _check_walk(tracker, "/api/v1/dag-runs", lambda r: (r["sort_key"], r["id"]), len(DAGS) * RUNS_PER_DAG,
                       newest_first=True, limit=4)
    pages = _walk(lambda cursor: tracker.get_json("/api/v1/dag-runs", limit=4, **({"cursor": cursor} if cursor
                                                                                     else {})), key="next_cursor")
    assert _items(pages) == runs  # `next_cursor`, the older name of `next`, walks the same


def test_dags_by_dag_id(tracker: Tracker) -> None:
    rows = _check_walk(tracker, "/api/v1/views/dags", lambda d: (d["dag_id"], d["uid"] or ""), len(DAGS),
                       ident="dag_id", limit=3)
    assert all(len(d["runs"]) == RUNS_PER_DAG and d["total_runs"] == RUNS_PER_DAG for d in rows)


def test_a_dags_runs(tracker: Tracker) -> None:
    _check_walk(tracker, f"/api/v1/views/dags/{DAGS[0]}", lambda r: (r["sort_key"], r["id"]), RUNS_PER_DAG,
                field="runs", newest_first=True, limit=1)


def test_spark_apps_newest_first_ties_by_id(tracker: Tracker) -> None:
    rows = _check_walk(tracker, "/api/v1/views/spark-apps", lambda a: (a["start_time"], a["id"]),
                       len(DAGS) * RUNS_PER_DAG, newest_first=True, limit=5)
    assert len({a["start_time"] for a in rows}) < len(rows)  # ties on the start time, broken by the id


def test_datasets_by_name(tracker: Tracker) -> None:
    whole = tracker.get_json("/api/v1/views/datasets", limit=500)
    assert len(whole["items"]) > len(DAGS) * RUNS_PER_DAG and whole["next"] is None  # an output per run and more
    rows = _check_walk(tracker, "/api/v1/views/datasets", lambda d: (d["identity"], d["id"]), len(whole["items"]),
                       limit=6)
    assert rows == whole["items"]
    assert all(d["writes"] >= 1 or d["reads"] >= 1 for d in rows)


def test_rows_inserted_during_a_walk_are_not_repeated(tracker: Tracker) -> None:
    """Newer runs, apps and datasets land while a walk is between pages: no row of the walk comes twice, and
    every row that existed when it began is still seen."""
    before_runs = {r["id"] for r in _items(_walk(lambda c: tracker.get_json(
        "/api/v1/dag-runs", limit=500, **({"cursor": c} if c else {})), key="next_cursor"))}
    first = tracker.get_json("/api/v1/dag-runs", limit=5)
    apps_first = tracker.get_json("/api/v1/views/spark-apps", limit=5)
    answer = tracker.post_events([e for n in range(3) for e in _run_events(DAGS[n], 28, tag=f"_late{n}")])
    assert answer.status_code == 202, answer.text
    pages = [first]
    while pages[-1]["next_cursor"]:
        pages.append(tracker.get_json("/api/v1/dag-runs", limit=5, cursor=pages[-1]["next_cursor"]))
    ids = [r["id"] for r in _items(pages)]
    assert len(ids) == len(set(ids))
    assert before_runs <= set(ids)
    apps = [apps_first]
    while apps[-1]["next"]:
        apps.append(tracker.get_json("/api/v1/views/spark-apps", limit=5, cursor=apps[-1]["next"]))
    app_ids = [a["id"] for a in _items(apps)]
    assert len(app_ids) == len(set(app_ids))


def test_alerts_newest_first(tracker: Tracker) -> None:
    rule = requests.post(tracker.url + "/api/v1/alert-rules", json={"name": "failures", "kind": "task_failed"},
                         headers=tracker.headers(), timeout=30)
    assert rule.status_code == 201, rule.text
    failures = [event("task_attempt.end", {"state": "failed", "end_date": "2026-10-20T01:00:00Z"}, agent="airflow",
                      time="2026-10-20T01:00:00Z",
                      context={"dag_id": dag_id, "execution_date": "2026-10-20T00:00:00+00:00", "uid": "prod",
                               "task_id": f"t{n}", "try_number": "1"})
                for dag_id in DAGS[:3] for n in range(3)]
    assert tracker.post_events(failures).status_code == 202
    wait_for(lambda: requests.post(tracker.url + "/api/v1/alerts/evaluate", headers=tracker.headers(),
                                   timeout=60).ok and len(tracker.get_json("/api/v1/alerts")["items"]) >= 9,
             "nine alerts", 60)
    expected = len(tracker.get_json("/api/v1/alerts")["items"])
    _check_walk(tracker, "/api/v1/alerts", lambda a: (a["opened_at"], a["id"]), expected, newest_first=True,
                limit=2)


def test_instances_by_name(tracker: Tracker) -> None:
    for n in (3, 1, 4, 0, 2):
        answer = requests.post(tracker.url + "/api/v1/airflow-instances",
                               json={"name": f"airflow-{n}", "url": "http://x", "auth_kind": "none"},
                               headers=tracker.headers(), timeout=30)
        assert answer.status_code == 201, answer.text
    _check_walk(tracker, "/api/v1/airflow-instances", lambda i: i["name"], 5, ident="name", limit=2)
    # the Instances page: instances seen in events ("prod") and registered ones, by uid
    whole = tracker.get_json("/api/v1/views/instances", limit=500)["items"]
    assert len(whole) >= 6
    walked = _check_walk(tracker, "/api/v1/views/instances", lambda i: i["uid"], len(whole), ident="uid", limit=2)
    assert [i["uid"] for i in walked] == [i["uid"] for i in whole]


@pytest.mark.parametrize("path", ["/api/v1/alerts", "/api/v1/airflow-instances", "/api/v1/views/alerts",
                                  "/api/v1/views/instances",
                                  "/api/v1/views/spark-apps", "/api/v1/views/datasets", "/api/v1/views/dags",
                                  f"/api/v1/views/dags/{DAGS[0]}", "/api/v1/dag-runs"])
def test_a_made_up_cursor_is_a_422(tracker: Tracker, path: str) -> None:
    import base64

    for made_up in ("bm90IGEgY3Vyc29y", base64.urlsafe_b64encode(b'{"k":[1,2],"b":false}').decode(),
                    base64.urlsafe_b64encode(b'{"k":[1],"b":false}').decode()):  # garbage; numbers for text keys
        answer = tracker.get(path, cursor=made_up)
        assert answer.status_code == 422, (made_up, answer.text)


def test_ui_pages_render_and_link_back(tracker: Tracker) -> None:
    session = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', session.get(tracker.url + "/ui/login", timeout=30).text)
    assert csrf is not None
    login = session.post(tracker.url + "/ui/login", data={"token": tracker.token, "csrf": csrf.group(1),
                                                          "next": "/ui/dags"}, allow_redirects=False, timeout=30)
    assert login.status_code == 303, login.text
    for path in ("/ui/spark-apps", "/ui/datasets", "/ui/dags", f"/ui/dags/{DAGS[0]}", "/ui/alerts", "/ui/instances"):
        page = session.get(tracker.url + path, timeout=30)
        assert page.status_code == 200, (path, page.text[:500])
    cursors = {"/ui/spark-apps": tracker.get_json("/api/v1/views/spark-apps", limit=5)["next"],
               "/ui/datasets": tracker.get_json("/api/v1/views/datasets", limit=5)["next"],
               "/ui/dags": tracker.get_json("/api/v1/views/dags", limit=2)["next"],
               f"/ui/dags/{DAGS[0]}": tracker.get_json(f"/api/v1/views/dags/{DAGS[0]}", limit=1)["next"]}
    for path, cursor in cursors.items():  # a page reached by a cursor links back to the one before it
        page = session.get(tracker.url + path, params={"cursor": cursor}, timeout=30)
        assert page.status_code == 200, (path, page.text[:500])
        assert 'rel="prev"' in page.text, path
