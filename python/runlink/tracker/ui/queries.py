"""Read queries behind the web UI pages (ui/pages.py) and their JSON twins under /api/v1/views/ (routes/views.py).

Each `*_view` function returns one page's data as plain dicts, and each `*_page` function adds what a page
shows beside it (filters, alerts), so the HTML page and the JSON route show the same facts. Heavy trees come from
tracker/queries.py; the lists (DAGs, runs, a 500-task run) use lighter selects here, because the page needs states
and durations, not every child row. `found` and the time filter answer 404 and 422 for both twins alike.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from fastapi import HTTPException
from sqlalchemy import Connection, case, func, literal, literal_column, select, union_all
from sqlalchemy.sql import Select

from runlink.context import ContextError
from runlink.context import stored_instant as instant
from runlink.instants import parse_instant, seconds_between
from runlink.masking import mask_value
from runlink.tracker import diagnosis, keyset, queries, trends
from runlink.tracker.alerts import rules as alert_rules
from runlink.tracker.models import (
    contexts,
    dag_runs,
    dags,
    dataset_ops,
    datasets,
    instances,
    spark_app_contexts,
    spark_apps,
    spark_executors,
    spark_jobs,
    state_events,
    task_attempts,
)
from runlink.tracker.states import FAILED, error_text

HISTORY_RUNS = 30
GRID_RUNS = 25
WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
           "30d": timedelta(days=30)}


# ---------------------------------------------------------------- helpers

def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:  # noqa: ANN001
    result = conn.execute(stmt)
    keys = [str(k) for k in result.keys()]
    return [dict(zip(keys, row, strict=False)) for row in result.fetchall()]


def keyset_page(conn: Connection, stmt: Select, order: Sequence[keyset.Order], cursor: str | None, limit: int,
                shape: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """`keyset.page`, a cursor this server did not make answered 422 (the HTML page and its JSON twin alike)."""
    try:
        return keyset.page(conn, stmt, order, cursor, limit, shape)
    except ValueError:
        raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None


def _median(values: Iterable[float]) -> float | None:
    data = [v for v in values if v is not None]
    return statistics.median(data) if data else None


def _run_duration(run: dict[str, Any]) -> float | None:
    return seconds_between(run.get("start_date"), run.get("end_date"))


# ---------------------------------------------------------------- instances

INSTANCES_PAGE = 50


def _uid_page(uids: list[str], cursor: str | None, limit: int) -> tuple[list[str], str | None, str | None]:
    """A keyset page of sorted instance uids (a handful: they are paged in memory, their counts in the database)."""
    after, backwards = "", False
    if cursor:
        try:
            (after,), backwards = keyset.decode(cursor, 1)
        except ValueError:
            after = None
        if not isinstance(after, str):
            raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"})
    if backwards:
        before = [uid for uid in uids if uid < after]
        page, more_before, more_after = before[-limit:], len(before) > limit, True
    else:
        rest = [uid for uid in uids if uid > after]
        page, more_before, more_after = rest[:limit], bool(cursor), len(rest) > limit
    return (page, keyset.encode([page[-1]]) if page and more_after else None,
            keyset.encode([page[0]], backwards=True) if page and more_before else None)


def instances_view(conn: Connection, cursor: str | None = None, limit: int = INSTANCES_PAGE) -> dict[str, Any]:
    """Airflow instances by uid, a keyset page (`next`/`previous` as `cursor`), with what the tracker knows of
    their syncer: last snapshot, DAGs, runs (counted for the page's instances only).

    Uses the syncer's `airflow_instances` module when it is installed (name, url, lag, last error)."""
    rows = _rows(conn, select(instances).order_by(instances.c.uid))
    by_uid = {r["uid"]: {**r, "name": None, "url": None, "last_sync_at": None, "lag_s": None, "last_error": None,
                         "source": "events"} for r in rows}
    extra = _syncer_instances(conn)
    for item in extra:
        uid = item.get("uid")
        if uid is None:
            continue
        by_uid.setdefault(uid, {"uid": uid, "first_seen": None})
        by_uid[uid].update({k: v for k, v in item.items() if k in
                            ("name", "url", "last_sync_at", "last_success_at", "lag_s", "last_error", "aliases")},
                           source="syncer")
        for alias in item.get("aliases") or ():  # an alias uid is the instance, not an instance of its own
            seen = (by_uid.pop(alias, None) or {}).get("first_seen")
            if seen and (by_uid[uid]["first_seen"] is None or seen < by_uid[uid]["first_seen"]):
                by_uid[uid]["first_seen"] = seen
    page, next_cursor, previous = _uid_page(sorted(by_uid), cursor, limit)
    by_uid = {uid: by_uid[uid] for uid in page}
    dag_counts = instance_dag_counts(conn, by_uid)
    run_stats = {r[0]: (r[1], r[2]) for r in conn.execute(
        select(dag_runs.c.uid, func.count(), func.max(dag_runs.c.sort_key)).where(dag_runs.c.uid.in_(page))
        .group_by(dag_runs.c.uid)).all()}
    syncer_last = dict(conn.execute(
        select(contexts.c.uid, func.max(state_events.c.time))
        .join(contexts, contexts.c.id == state_events.c.context_id)
        .where(state_events.c.agent == "syncer", contexts.c.uid.in_(page))
        .group_by(contexts.c.uid)
    ).all())
    failed_runs = dict(conn.execute(
        select(dag_runs.c.uid, func.count()).where(dag_runs.c.state == "failed", dag_runs.c.uid.in_(page))
        .group_by(dag_runs.c.uid)).all())
    now = datetime.now(timezone.utc)
    items = []
    for uid, item in by_uid.items():
        runs, last_run = run_stats.get(uid, (0, None))
        last_sync = item.get("last_sync_at") or syncer_last.get(uid)
        seen = parse_instant(last_sync)
        age = (now - seen).total_seconds() if seen else None
        lag = item.get("lag_s")
        if item.get("last_error"):
            health = "error"
        elif seen is None:
            health = "no syncer"
        elif (lag if lag is not None else age) is not None and (lag if lag is not None else age) > 600:
            health = "lagging"
        else:
            health = "ok"
        items.append({**item, "dags": dag_counts.get(uid, 0), "runs": runs, "last_run": last_run,
                      "failed_runs": failed_runs.get(uid, 0), "last_sync_at": last_sync, "sync_age_s": age,
                      "health": health})
    unassigned = conn.execute(select(func.count()).select_from(dag_runs).where(dag_runs.c.uid.is_(None))).scalar()
    return {"items": items, "next": next_cursor, "previous": previous, "runs_without_instance": unassigned or 0}


def instance_dag_counts(conn: Connection, by_uid: dict[str, dict[str, Any]]) -> dict[str, int]:
    """DAGs per instance as the DAG list counts them: a definition or a run under the uid or one of its aliases."""
    uids = sorted({*by_uid, *(alias for item in by_uid.values() for alias in item.get("aliases") or ())})
    pairs = select(dags.c.uid, dags.c.dag_id).where(dags.c.uid.in_(uids)).union(
        select(dag_runs.c.uid, dag_runs.c.dag_id).where(dag_runs.c.uid.in_(uids)).distinct())
    dag_ids: dict[str, set[str]] = {}
    for uid, dag_id in conn.execute(pairs).all():
        dag_ids.setdefault(uid, set()).add(dag_id)
    counts = {}
    for uid, item in by_uid.items():
        names = set(dag_ids.get(uid, ()))
        for alias in item.get("aliases") or ():
            names |= dag_ids.get(alias, set())
        counts[uid] = len(names)
    return counts


def _syncer_instances(conn: Connection) -> list[dict[str, Any]]:
    """Registered instances (the syncer's `airflow_instances` registry, when that module is present), flattened:
    name, url, aliases, last_sync_at, last_success_at, lag_s, last_error. Credentials never appear."""
    try:
        from runlink.tracker import airflow_instances
    except ImportError:
        return []
    try:
        items = airflow_instances.list_public(conn)
    except Exception:  # noqa: BLE001 - table missing on an older database: the page shows what events tell
        return []
    out = []
    for item in items:
        sync = item.get("sync_state") or {}
        out.append({"uid": item.get("uid"), "name": item.get("name"), "url": item.get("url"),
                    "aliases": item.get("aliases") or [], "last_sync_at": sync.get("last_sync_at"),
                    "last_success_at": sync.get("last_success_at"),
                    "lag_s": sync.get("lag_s"), "last_error": sync.get("last_error")})
    return out


def instance_view(conn: Connection, name: str) -> dict[str, Any] | None:
    """One Airflow instance by name, uid or alias: its syncer health, uid and aliases, DAGs and recent runs."""
    item = next((i for i in instances_view(conn, limit=keyset.MAX_LIMIT)["items"]
                 if name in (i.get("name"), i["uid"]) or name in (i.get("aliases") or ())), None)
    if item is None:
        return None
    uids = [item["uid"], *(item.get("aliases") or ())]
    dag_items = [d for uid in uids for d in dags_view(conn, instance=uid)["items"]]
    runs = _rows(conn, select(*(dag_runs.c[c] for c in _RUN_COLS)).where(dag_runs.c.uid.in_(uids))
                 .order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc()).limit(RECENT_RUNS))
    return {"instance": item, "dags": dag_items, "runs": [_run_item(r) for r in runs]}


RECENT_RUNS = 25


# ---------------------------------------------------------------- Spark applications

SPARK_APP_STATES = ("running", "succeeded", "failed", "ended")
SPARK_APPS_PAGE = 50


_APP_START = func.coalesce(spark_apps.c.start_time, literal_column("''"))  # the index's expression (0016)
SPARK_APPS_ORDER = (keyset.Order(_APP_START, "start_key", descending=True),
                    keyset.Order(spark_apps.c.id, "id", descending=True))


def _spark_app_item(app: dict[str, Any]) -> dict[str, Any]:
    app.pop("start_key", None)
    app["state"] = app["state"] or ("running" if not app["end_time"] else "ended")
    app["duration_s"] = seconds_between(app["start_time"], app["end_time"])
    return app


def spark_apps_view(conn: Connection, *, q: str | None = None, state: str | None = None,
                    cursor: str | None = None, limit: int = SPARK_APPS_PAGE) -> dict[str, Any]:
    """Spark applications, newest first (start time, then id), a keyset page of `limit` from `cursor` (`next`
    and `previous` continue): `q` matches the app id or name (contains), `state` the app's state (`running`: no
    end yet). Each with the task (or run) it belongs to."""
    stmt = (select(spark_apps.c.id, spark_apps.c.app_id, spark_apps.c.attempt_id, spark_apps.c.name,
                   spark_apps.c.state, spark_apps.c.start_time, spark_apps.c.end_time, spark_apps.c.master,
                   contexts.c.dag_id, contexts.c.task_id, contexts.c.run_pk, contexts.c.attempt_pk,
                   _APP_START.label("start_key"))
            .outerjoin(contexts, contexts.c.id == spark_apps.c.context_id))
    if q:
        stmt = stmt.where(spark_apps.c.app_id.contains(q, autoescape=True)
                          | spark_apps.c.name.contains(q, autoescape=True))
    if state == "running":
        stmt = stmt.where(spark_apps.c.end_time.is_(None))
    elif state == "ended":  # ended without saying how (the listener's end event names no state)
        stmt = stmt.where(spark_apps.c.end_time.is_not(None), spark_apps.c.state.is_(None))
    elif state:
        stmt = stmt.where(spark_apps.c.state == state)
    result = keyset_page(conn, stmt, SPARK_APPS_ORDER, cursor, limit, _spark_app_item)
    return {**result, "filters": {"q": q, "state": state}, "states": SPARK_APP_STATES}


# ---------------------------------------------------------------- DAGs

def _run_filters(stmt, instance: str | None, state: str | None, since: str | None, until: str | None):  # noqa: ANN001, ANN202
    if instance:
        stmt = stmt.where(dag_runs.c.uid == instance)
    if state:
        stmt = stmt.where(dag_runs.c.state == state)
    if since:
        stmt = stmt.where(dag_runs.c.sort_key >= since)
    if until:
        stmt = stmt.where(dag_runs.c.sort_key < until)
    return stmt


_RUN_COLS = ("id", "uid", "dag_id", "run_id", "logical_date", "state", "start_date", "end_date", "run_type",
             "placeholder", "synthetic", "sort_key")


def _run_item(row: dict[str, Any]) -> dict[str, Any]:
    row["duration_s"] = _run_duration(row)
    for name in ("placeholder", "synthetic"):
        if row.get(name) is not None:
            row[name] = bool(row[name])
    row.pop("rn", None)
    return row


DAGS_PAGE = 50


def _walk(conn: Connection, column: Any, bound: str, limit: int, backwards: bool, filters: list[Any]) -> list[str]:
    """Up to `limit` distinct values of an indexed `column` after `bound` (before it when `backwards`), nearest
    first: a recursive query that probes the index once per value (min/max of the next range), so its cost does
    not grow with the number of rows."""
    pick, beyond = (func.max, column.__lt__) if backwards else (func.min, column.__gt__)

    def next_after(value: Any) -> Any:
        return select(pick(column)).where(beyond(value), *filters).scalar_subquery()

    walk = select(next_after(bound).label("value"), literal(1).label("n")).cte("walk", recursive=True)
    walk = walk.union_all(select(next_after(walk.c.value), walk.c.n + 1)
                          .where(walk.c.value.is_not(None), walk.c.n < limit))
    return [r[0] for r in conn.execute(select(walk.c.value).where(walk.c.value.is_not(None)))]


def _dag_ids(conn: Connection, bound: str, limit: int, backwards: bool, *, instance: str | None, q: str | None,
             include_spark: bool, run_filtered: Select | None) -> list[str]:
    """Up to `limit` dag_ids with runs or a definition after `bound` (before it when `backwards`), in order.
    With run filters (state, time window), only dag_ids of the filtered runs, from those runs."""
    if run_filtered is not None:
        sub = run_filtered.where(dag_runs.c.dag_id < bound if backwards else dag_runs.c.dag_id > bound).subquery()
        ordered = sub.c.dag_id.desc() if backwards else sub.c.dag_id
        found = {r[0] for r in conn.execute(select(sub.c.dag_id).distinct().order_by(ordered).limit(limit))}
    else:
        run_filters: list[Any] = [] if include_spark else [dag_runs.c.synthetic.is_(False)]
        def_filters: list[Any] = []
        if instance:
            run_filters.append(dag_runs.c.uid == instance)
            def_filters.append(dags.c.uid == instance)
        if q:
            run_filters.append(dag_runs.c.dag_id.contains(q, autoescape=True))
            def_filters.append(dags.c.dag_id.contains(q, autoescape=True))
        found = {*_walk(conn, dag_runs.c.dag_id, bound, limit, backwards, run_filters),
                 *_walk(conn, dags.c.dag_id, bound, limit, backwards, def_filters)}
    ids = sorted(found)
    return ids[-limit:] if backwards else ids[:limit]


def dags_view(conn: Connection, *, instance: str | None = None, state: str | None = None, since: str | None = None,
              until: str | None = None, q: str | None = None, include_spark: bool = True,
              cursor: str | None = None, limit: int = DAGS_PAGE) -> dict[str, Any]:
    """DAGs by dag_id, a keyset page of `limit` dag_ids after `cursor` (every instance of a dag_id on the same
    page; `next`/`previous` continue), each (instance, DAG) with its last runs: a state strip and a trend."""
    after, backwards = "", False
    if cursor:
        try:
            (after,), backwards = keyset.decode(cursor, 1)
        except ValueError:
            raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None
        if not isinstance(after, str):
            raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"})
    filtered = state or since or until
    run_filter = None
    if filtered:
        run_filter = _run_filters(select(dag_runs.c.dag_id), instance, state, since, until)
        if q:
            run_filter = run_filter.where(dag_runs.c.dag_id.contains(q, autoescape=True))
        if not include_spark:
            run_filter = run_filter.where(dag_runs.c.synthetic.is_(False))
    ids = _dag_ids(conn, after, limit + 1, backwards, instance=instance, q=q, include_spark=include_spark,
                   run_filtered=run_filter)
    more = len(ids) > limit
    if backwards:
        ids, more_before, more_after = ids[-limit:], more, True
    else:
        ids, more_before, more_after = ids[:limit], bool(cursor) and bool(ids), more
    newest = []
    for dag_id in ids:  # each an index range: the DAG's newest runs; all of them in one statement
        stmt = _run_filters(select(*(dag_runs.c[c] for c in _RUN_COLS)).where(dag_runs.c.dag_id == dag_id),
                            instance, state, since, until)
        if not include_spark:
            stmt = stmt.where(dag_runs.c.synthetic.is_(False))
        newest.append(select(stmt.order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc()).limit(HISTORY_RUNS)
                             .subquery()))
    runs = _rows(conn, union_all(*newest)) if newest else []
    counts = {(r[0], r[1]): r[2] for r in conn.execute(
        _run_filters(select(dag_runs.c.uid, dag_runs.c.dag_id, func.count()), instance, state, since, until)
        .where(dag_runs.c.dag_id.in_(ids)).group_by(dag_runs.c.uid, dag_runs.c.dag_id)).all()} if ids else {}
    defs = {(d["uid"], d["dag_id"]): d for d in _rows(conn, select(
        dags.c.uid, dags.c.dag_id, dags.c.schedule, dags.c.is_paused, dags.c.next_run_date, dags.c.owners,
        dags.c.tags, dags.c.description, dags.c.is_active).where(dags.c.dag_id.in_(ids)))} if ids else {}
    by_dag: dict[tuple, dict[str, Any]] = {}
    for run in reversed(runs):  # oldest first within each DAG, at most HISTORY_RUNS each
        key = (run["uid"], run["dag_id"])
        entry = by_dag.setdefault(key, {"uid": run["uid"], "dag_id": run["dag_id"], "runs": [],
                                        "synthetic": bool(run["synthetic"])})
        entry["runs"].append(_run_item(run))
    for entry in by_dag.values():
        entry["runs"] = sorted(entry["runs"], key=lambda r: (r["sort_key"], r["id"]))[-HISTORY_RUNS:]
    if not (state or since or until):
        for key in defs:
            if instance and key[0] != instance:
                continue
            if q and q.lower() not in key[1].lower():
                continue
            by_dag.setdefault(key, {"uid": key[0], "dag_id": key[1], "runs": [], "synthetic": False})
    items = []
    for key, entry in by_dag.items():
        d = defs.get(key) or {}
        runs_ = entry["runs"]
        durations = [r["duration_s"] for r in runs_ if r["duration_s"] is not None]
        last = runs_[-1] if runs_ else None
        entry.update(
            schedule=d.get("schedule"), is_paused=d.get("is_paused"), next_run_date=d.get("next_run_date"),
            is_active=d.get("is_active"),
            owners=_loads(d.get("owners")), tags=_loads(d.get("tags")), description=d.get("description"),
            total_runs=counts.get(key, len(runs_)), last_state=last["state"] if last else None,
            last_run=last, median_duration_s=_median(durations),
            failed_recent=sum(1 for r in runs_ if r["state"] in FAILED),
        )
        items.append(entry)
    items.sort(key=lambda e: (e["dag_id"], e["uid"] or ""))
    return {"items": items, "next": keyset.encode([ids[-1]]) if ids and more_after else None,
            "previous": keyset.encode([ids[0]], backwards=True) if ids and more_before else None,
            "filters": {"instance": instance, "state": state, "since": since, "until": until, "q": q},
            "history_runs": HISTORY_RUNS}


def _loads(value: str | None) -> Any:
    if not value:
        return None
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:
        return value


RUNS_ORDER = (keyset.Order(dag_runs.c.sort_key, "sort_key", descending=True),
              keyset.Order(dag_runs.c.id, "id", descending=True))


def dag_view(conn: Connection, dag_id: str, *, instance: str | None = None, state: str | None = None,
             since: str | None = None, until: str | None = None, limit: int = 100,
             cursor: str | None = None) -> dict[str, Any] | None:
    """One DAG: a keyset page of its runs (newest first; `next`/`previous` continue), their duration trend, and
    the Airflow-like grid (tasks x the page's most recent runs)."""
    stmt = _run_filters(select(*(dag_runs.c[c] for c in _RUN_COLS)).where(dag_runs.c.dag_id == dag_id),
                        instance, state, since, until)
    listing = keyset_page(conn, stmt, RUNS_ORDER, cursor, limit, _run_item)
    runs = listing["items"]
    definition = _rows(conn, select(dags).where(dags.c.dag_id == dag_id)
                       .where(dags.c.uid == instance if instance else True))
    if not runs and not definition:
        return None
    d = definition[0] if definition else {}
    grid_runs = list(reversed(runs[:GRID_RUNS]))
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    task_order: list[str] = []
    declared = _loads(d.get("tasks")) or []
    for t in declared:
        if isinstance(t, dict) and t.get("task_id") and t["task_id"] not in task_order:
            task_order.append(t["task_id"])
    if grid_runs:
        attempt_rows = _rows(conn, select(
            task_attempts.c.id, task_attempts.c.run_pk, task_attempts.c.task_id, task_attempts.c.map_index,
            task_attempts.c.try_number, task_attempts.c.state, task_attempts.c.duration_s,
            task_attempts.c.start_date).where(task_attempts.c.run_pk.in_([r["id"] for r in grid_runs]))
            .order_by(task_attempts.c.start_date, task_attempts.c.task_id))
        for a in attempt_rows:
            if a["task_id"] not in task_order:
                task_order.append(a["task_id"])
            per_run = cells.setdefault(a["task_id"], {})
            current = per_run.get(a["run_pk"])
            if current is None or (a["try_number"] or 0) >= (current["try_number"] or 0):
                per_run[a["run_pk"]] = {"id": a["id"], "state": a["state"], "try_number": a["try_number"],
                                        "duration_s": a["duration_s"]}
    trend = [{"id": r["id"], "label": r["run_id"] or r["logical_date"], "state": r["state"],
              "duration_s": r["duration_s"], "sort_key": r["sort_key"]} for r in reversed(runs)]
    durations = [r["duration_s"] for r in runs if r["duration_s"] is not None]
    return {
        "dag_id": dag_id, "instance": instance,
        "definition": {k: (_loads(v) if k in ("owners", "tags", "tasks") else v) for k, v in d.items()
                       if k not in ("stamp",)} if d else None,
        "runs": runs, "next": listing["next"], "previous": listing["previous"], "trend": trend,
        "median_duration_s": _median(durations),
        "grid": {"runs": [{"id": r["id"], "run_id": r["run_id"], "logical_date": r["logical_date"],
                           "state": r["state"]} for r in grid_runs],
                 "tasks": [{"task_id": t, "cells": [cells.get(t, {}).get(r["id"]) for r in grid_runs]}
                           for t in task_order]},
        "filters": {"instance": instance, "state": state, "since": since, "until": until},
    }


# ---------------------------------------------------------------- a DAG run

_ATTEMPT_COLS = ("id", "task_id", "map_index", "try_number", "placeholder", "state", "start_date", "end_date",
                 "duration_s", "operator", "error", "hostname", "pool", "queue", "max_tries")


_GRID_APP_COLS = (spark_apps.c.id, spark_apps.c.app_id, spark_apps.c.name, spark_apps.c.state,
                  spark_apps.c.start_time, spark_apps.c.end_time)


def _chunked_rows(conn: Connection, values: Sequence[str], stmt_for: Callable[[Sequence[str]], Select]
                  ) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(values), 900):
        out.extend(_rows(conn, stmt_for(values[start:start + 900])))
    return out


def _run_spark_apps(conn: Connection, pk: str) -> dict[str | None, list[dict[str, Any]]]:
    """A run's Spark applications per attempt, as the run tree places them: each attempt's own, and the shared ones
    its work ran on (work_context, `shared`). Failed jobs count that attempt's jobs only on a shared application
    (its owner: also the jobs no task claimed)."""
    run_ctxs = _rows(conn, select(contexts.c.id, contexts.c.attempt_pk).where(contexts.c.run_pk == pk))
    ctxs_of: dict[str | None, set[str]] = {}
    for ctx in run_ctxs:
        ctxs_of.setdefault(ctx["attempt_pk"], set()).add(ctx["id"])
    owned = _rows(conn, select(*_GRID_APP_COLS, contexts.c.attempt_pk)
                  .join(contexts, contexts.c.id == spark_apps.c.context_id).where(contexts.c.run_pk == pk))
    used = _rows(conn, select(spark_app_contexts.c.spark_app_pk, contexts.c.attempt_pk)
                 .join(contexts, contexts.c.id == spark_app_contexts.c.context_id).where(contexts.c.run_pk == pk))
    users: dict[str, set[str]] = {}
    for row in _chunked_rows(conn, [a["id"] for a in owned], lambda chunk: select(spark_app_contexts).where(
            spark_app_contexts.c.spark_app_pk.in_(chunk))):
        users.setdefault(row["spark_app_pk"], set()).add(row["context_id"])
    placed = {(a["attempt_pk"], a["id"]) for a in owned}
    borrowed = sorted({(u["attempt_pk"], u["spark_app_pk"]) for u in used} - placed, key=str)
    app_by_pk = {a["id"]: a for a in _chunked_rows(conn, sorted({app_pk for _, app_pk in borrowed}),
                                                   lambda chunk: select(*_GRID_APP_COLS)
                                                   .where(spark_apps.c.id.in_(chunk)))}
    pks = sorted({a["id"] for a in owned} | set(app_by_pk))
    failed: dict[str, dict[str | None, int]] = {}  # app pk -> work context (None: unclaimed) -> failed jobs
    for row in _chunked_rows(conn, pks, lambda chunk: select(
            spark_jobs.c.spark_app_pk, spark_jobs.c.context_id, func.count().label("n"))
            .where(spark_jobs.c.spark_app_pk.in_(chunk), spark_jobs.c.result == "failed")
            .group_by(spark_jobs.c.spark_app_pk, spark_jobs.c.context_id)):
        failed.setdefault(row["spark_app_pk"], {})[row["context_id"]] = row["n"]
    out: dict[str | None, list[dict[str, Any]]] = {}
    for app in owned:
        attempt_pk = app.pop("attempt_pk")
        mine = ctxs_of.get(attempt_pk, set())
        app["shared"] = bool(users.get(app["id"], set()) - mine)
        counts = failed.get(app["id"], {})
        app["failed_jobs"] = sum(n for ctx, n in counts.items() if not app["shared"] or ctx is None or ctx in mine)
        out.setdefault(attempt_pk, []).append(app)
    for attempt_pk, app_pk in borrowed:
        mine = ctxs_of.get(attempt_pk, set())
        counts = failed.get(app_pk, {})
        out.setdefault(attempt_pk, []).append({**app_by_pk[app_pk], "shared": True,
                                               "failed_jobs": sum(n for ctx, n in counts.items() if ctx in mine)})
    for apps in out.values():
        apps.sort(key=lambda a: (a["start_time"] or "", a["id"]))
    return out


def dag_run_view(conn: Connection, pk: str) -> dict[str, Any] | None:
    """A DAG run's task grid: every attempt with state and duration, a Gantt offset, its Spark apps' health.

    Light on purpose (no logs, params or stage rows): a 500-task run must render fast."""
    found = _rows(conn, select(dag_runs).where(dag_runs.c.id == pk))
    if not found:
        return None
    run = found[0]
    run["conf"] = mask_value(_loads(run.get("conf")))
    run["duration_s"] = _run_duration(run)
    attempts = _rows(conn, select(*(task_attempts.c[c] for c in _ATTEMPT_COLS)).where(task_attempts.c.run_pk == pk)
                     .order_by(task_attempts.c.start_date, task_attempts.c.task_id, task_attempts.c.map_index,
                               task_attempts.c.try_number))
    apps_by_attempt = _run_spark_apps(conn, pk)  # (None: apps linked to the run only)
    starts = [parse_instant(a["start_date"]) for a in attempts if a["start_date"]]
    ends = [parse_instant(a["end_date"]) for a in attempts if a["end_date"]]
    t0 = min(starts) if starts else parse_instant(run.get("start_date"))
    t1 = max(ends + starts) if (ends or starts) else parse_instant(run.get("end_date"))
    span = (t1 - t0).total_seconds() if t0 and t1 and t1 > t0 else 0.0
    tries: dict[tuple, int] = {}
    for a in attempts:
        key = (a["task_id"], a["map_index"])
        tries[key] = tries.get(key, 0) + 1
    summary: dict[str, int] = {}
    for a in attempts:
        a["placeholder"] = bool(a["placeholder"])
        a["error"] = error_text(a["error"])
        a["tries"] = tries[(a["task_id"], a["map_index"])]
        a["spark_apps"] = apps_by_attempt.get(a["id"], [])
        s = parse_instant(a["start_date"])
        e = parse_instant(a["end_date"])
        if a["duration_s"] is None and s and e:
            a["duration_s"] = (e - s).total_seconds()
        if span and s and t0:
            a["offset_pct"] = round(100 * (s - t0).total_seconds() / span, 3)
            a["width_pct"] = round(max(0.3, 100 * ((e or t1) - s).total_seconds() / span), 3)
        else:
            a["offset_pct"] = a["width_pct"] = None
        summary[a["state"] or "unknown"] = summary.get(a["state"] or "unknown", 0) + 1
    neighbours = run_neighbours(conn, run)
    run.pop("sort_key", None)
    durations = [a["duration_s"] for a in attempts if a["duration_s"] is not None]
    slowest = max(attempts, key=lambda a: a["duration_s"] or -1)["id"] if durations else None
    return {"run": run, "task_attempts": attempts, "run_spark_apps": apps_by_attempt.get(None, []),
            "neighbours": neighbours, "alerts": alerts_about(conn, run["dag_id"], "dag_run", pk),
            "states": summary, "span_s": span, "t0": t0.isoformat() if t0 else None, "slowest_attempt": slowest,
            "median_task_duration_s": _median(durations)}


# ---------------------------------------------------------------- a task attempt

def task_attempt_view(conn: Connection, pk: str) -> dict[str, Any] | None:
    """One attempt: params (secrets masked), error, log tail, metrics, datasets, its Spark apps (summaries),
    the other tries, and how its duration compares with the same task's recent runs."""
    attempt = queries.task_attempt(conn, pk)
    if attempt is None:
        return None
    attempt["params"] = mask_value(attempt.get("params"))
    attempt.pop("source_code", None) if attempt.get("source_code") and len(attempt["source_code"]) > 200_000 else None
    apps = attempt.pop("spark_apps", [])
    attempt["spark_apps"] = [spark_summary(a) for a in apps]
    attempt["streaming_queries"] = [streaming_summary(q, a) for a in apps for q in a.get("streaming", [])]
    attempt["sql_statements"] = [sql_statement_summary(s) for s in attempt.get("sql_statements", [])]
    run = attempt.get("dag_run") or {}
    others = _rows(conn, select(task_attempts.c.id, task_attempts.c.try_number, task_attempts.c.state,
                                task_attempts.c.duration_s, task_attempts.c.start_date)
                   .where(task_attempts.c.run_pk == attempt["run_pk"], task_attempts.c.task_id == attempt["task_id"],
                          task_attempts.c.map_index == attempt["map_index"])
                   .order_by(task_attempts.c.try_number))
    attempt["tries"] = others
    history = []
    if run.get("dag_id"):
        history = _rows(conn, select(task_attempts.c.id, task_attempts.c.state, task_attempts.c.duration_s,
                                     dag_runs.c.run_id, dag_runs.c.sort_key)
                        .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
                        .where(dag_runs.c.dag_id == run["dag_id"], task_attempts.c.task_id == attempt["task_id"],
                               task_attempts.c.map_index == attempt["map_index"])
                        .where(dag_runs.c.uid == run["uid"] if run.get("uid") else dag_runs.c.uid.is_(None))
                        .order_by(dag_runs.c.sort_key.desc(), task_attempts.c.try_number.desc()).limit(30))
    history.reverse()
    attempt["history"] = history
    attempt["airflow_links"] = airflow_links(conn, run, attempt)
    previous = [h["duration_s"] for h in history if h["id"] != pk and h["state"] == "success"
                and h["duration_s"] is not None]
    attempt["history_median_s"] = _median(previous)
    attempt["alerts"] = alerts_about(conn, run.get("dag_id"), "task_attempt", pk)
    attempt["diagnosis"] = diagnosis.diagnose(conn, pk)  # "Compared with its history"
    attempt["trends"] = trends.task_trends(conn, pk, limit=HISTORY_RUNS)
    _user_code(attempt)
    return attempt


def _user_code(attempt: dict[str, Any]) -> None:
    """What the task runs, not the operator's library class: Airflow captures a python_callable's source, but for
    other operators (SparkSubmitOperator...) the operator class; that source is dropped and the application file
    or command the parameters name is shown instead."""
    operator = (attempt.get("operator") or "").rsplit(".", 1)[-1]
    source = attempt.get("source_code") or ""
    if operator and re.match(rf"\s*(@[^\n]*\n\s*)*class {re.escape(operator)}\b", source):
        attempt["source_code"] = None
        attempt["operator_source_hidden"] = True
    params = attempt.get("params") if isinstance(attempt.get("params"), dict) else {}
    attempt["application"] = next((str(params[k]) for k in _APPLICATION_PARAMS if params.get(k)), None)


#: parameters that name the code an operator runs (spark-submit's application, a bash command, an SQL file)
_APPLICATION_PARAMS = ("application", "application_file", "main_application_file", "py_file", "jar", "bash_command",
                       "sql")


def run_neighbours(conn: Connection, run: dict[str, Any]) -> dict[str, dict[str, Any] | None]:
    """The previous and next run of the same DAG on the same instance (by logical date, else start)."""
    if not run.get("sort_key"):
        return {"previous": None, "next": None}
    same = select(dag_runs.c.id, dag_runs.c.run_id, dag_runs.c.logical_date, dag_runs.c.state).where(
        dag_runs.c.dag_id == run["dag_id"],
        dag_runs.c.uid == run["uid"] if run.get("uid") else dag_runs.c.uid.is_(None))
    key, pk = run["sort_key"], run["id"]
    before = (dag_runs.c.sort_key < key) | ((dag_runs.c.sort_key == key) & (dag_runs.c.id < pk))
    after = (dag_runs.c.sort_key > key) | ((dag_runs.c.sort_key == key) & (dag_runs.c.id > pk))
    earlier = _rows(conn, same.where(before)
                    .order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc()).limit(1))
    later = _rows(conn, same.where(after)
                  .order_by(dag_runs.c.sort_key, dag_runs.c.id).limit(1))
    return {"previous": earlier[0] if earlier else None, "next": later[0] if later else None}


def alerts_about(conn: Connection, dag_id: str | None, link: str, pk: str) -> list[dict[str, Any]]:
    """Alerts (open first, then the latest resolved) whose links name this run or attempt."""
    if not dag_id:
        return []
    found_alerts = [a for a in alert_rules.list_alerts(conn, dag_id=dag_id, limit=500)
                    if (a.get("links") or {}).get(link) == pk]
    return sorted(found_alerts, key=lambda a: a["state"] != "open")[:20]


def spark_summary(app: dict[str, Any]) -> dict[str, Any]:
    """An app (as `queries.spark_apps_full` returns it) reduced to the facts a task page needs."""
    stages = app.get("stages", [])
    jobs = app.get("jobs", [])
    queries_ = app.get("queries", [])
    return {
        "id": app["id"], "app_id": app["app_id"], "name": app.get("name"), "state": app.get("state"),
        "start_time": app.get("start_time"), "end_time": app.get("end_time"),
        "duration_s": seconds_between(app.get("start_time"), app.get("end_time")),
        "jobs": len(jobs), "failed_jobs": sum(1 for j in jobs if j.get("result") == "failed"),
        "stages": len(stages), "failed_stages": sum(1 for s in stages if s["status"] == "failed"),
        "queries": len(queries_), "failed_queries": sum(1 for q in queries_ if not q.get("success")),
        "executor_run_time_ms": sum(s["metrics"].get("executor_run_time_ms") or 0 for s in stages),
        "spilled_bytes": sum((s["metrics"].get("memory_spilled_bytes") or 0)
                             + (s["metrics"].get("disk_spilled_bytes") or 0) for s in stages),
        "shared": bool(app.get("shared")),  # counts are this task's work only
        **spark_ui_links(app),
    }


def streaming_summary(query: dict[str, Any], app: dict[str, Any]) -> dict[str, Any]:
    """A streaming query run (`queries.spark_apps_full`'s `streaming`) as one line of the task page's table."""
    batches = query.get("total_batches") or 0
    return {
        "run_id": query["run_id"], "name": query.get("name") or query["query_id"], "state": query["state"],
        "app_pk": app["id"], "app": app.get("name") or app["app_id"], "batches": batches,
        "input_rows": query.get("total_input_rows"), "input_rows_per_s": query.get("input_rows_per_s"),
        "processed_rows_per_s": query.get("processed_rows_per_s"),
        "mean_batch_s": (query.get("total_batch_ms") or 0) / batches / 1000 if batches else None,
        "max_batch_s": None if query.get("max_batch_ms") is None else query["max_batch_ms"] / 1000,
        "latest_batch_id": query.get("latest_batch_id"),
        "watermark": query.get("watermark"), "state_rows": query.get("state_rows"),
        "error": error_text(query.get("error")),
    }


#: a link to a statement in its warehouse's console, per engine: RUNLINK_SQL_LINK_<ENGINE> (for example
#: RUNLINK_SQL_LINK_SNOWFLAKE=https://app.snowflake.com/acme/xy1/#/compute/history/queries/{query_id}/detail) with
#: {query_id}, {host}, {database} and {engine} filled in (URL-quoted); unset: no link
SQL_LINK_ENV = "RUNLINK_SQL_LINK_"


def sql_statement_link(statement: dict[str, Any]) -> str | None:
    """The configured console link of a statement's engine, or None (no id, no template, not http(s))."""
    import os

    engine, query_id = statement.get("engine"), statement.get("query_id")
    template = os.environ.get(SQL_LINK_ENV + re.sub(r"[^A-Za-z0-9]", "_", engine or "").upper()) if engine else None
    if not template or not query_id or not template.startswith(("https://", "http://")):
        return None
    values = {k: quote(str(statement.get(k) or ""), safe="") for k in ("query_id", "host", "database", "engine")}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):  # a template naming something else: no link rather than a 500
        return None


def sql_statement_summary(statement: dict[str, Any]) -> dict[str, Any]:
    """A statement an Airflow SQL hook ran, as one row of the task page's table."""
    return {
        "id": statement["id"], "seq": statement.get("seq"), "engine": statement.get("engine"),
        "host": statement.get("host"), "database": statement.get("database"), "query_id": statement.get("query_id"),
        "session_id": statement.get("session_id"), "link": sql_statement_link(statement),
        "statement": statement.get("statement") or "", "truncated": statement.get("statement_truncated"),
        "start_time": statement.get("start_time"), "state": statement.get("state"),
        "duration_s": None if statement.get("duration_ms") is None else statement["duration_ms"] / 1000,
        "rows": statement.get("rows"), "bytes_scanned": statement.get("bytes_scanned"),
        "success": statement.get("success"), "error": error_text(statement.get("error")),
        "tables_read": statement.get("tables_read") or [], "tables_written": statement.get("tables_written") or [],
        "parsed": statement.get("tables_read") is not None,
    }


# ---------------------------------------------------------------- links out (Airflow, Spark UI, History Server)

#: Spark conf keys naming a History Server: Spark's own (YARN links to it; documented as `host:port`, no scheme)
#: and runlink's, for other cluster managers (a full URL)
HISTORY_SERVER_KEYS = ("spark.runlink.historyServerUrl", "spark.yarn.historyServer.address")
_HOST_PORT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.\-]*(?::\d{1,5})?$")


def _web_base(value: Any) -> str | None:
    """An http(s) base URL or None: anything else (javascript:, file:, a bare host) never becomes a link."""
    if not isinstance(value, str):
        return None
    value = value.strip().rstrip("/")
    if not value.lower().startswith(("http://", "https://")) or any(ord(c) < 32 or c in "\"<>" for c in value):
        return None
    return value


def spark_ui_links(app: dict[str, Any]) -> dict[str, str | None]:
    """The live Spark UI (the app's `ui_url`, while it runs) and the History Server page of the app when its conf
    names one; only http(s) URLs."""
    conf = app.get("conf") if isinstance(app.get("conf"), dict) else {}
    named = [str(conf[k]).strip() for k in HISTORY_SERVER_KEYS if conf.get(k)]
    named = [f"http://{v}" if _HOST_PORT.match(v) else v for v in named]
    history = next((_web_base(v) for v in named if _web_base(v)), None)
    history_url = None
    if history and app.get("app_id"):
        history_url = f"{history}/history/{quote(str(app['app_id']), safe='')}/"
        if app.get("attempt_id"):
            history_url += f"{quote(str(app['attempt_id']), safe='')}/"
    return {"spark_ui_url": _web_base(app.get("ui_url")), "history_url": history_url}


def airflow_links(conn: Connection, run: dict[str, Any], attempt: dict[str, Any]) -> dict[str, str] | None:
    """Airflow's task log and grid for this attempt, when its instance is registered with a URL (`runlink airflow
    add`): Airflow 3 (`/dags/<dag>/runs/<run>/tasks/<task>`) or 2.x (`/dags/<dag>/grid?...`, api_version v1)."""
    if not run.get("uid") or not run.get("dag_id") or not run.get("run_id"):
        return None
    try:
        from runlink.tracker.airflow_instances import airflow_instances, instance_aliases
    except ImportError:
        return None
    try:
        owner = conn.execute(select(instance_aliases.c.uid).where(instance_aliases.c.alias == run["uid"])).scalar()
        row = conn.execute(select(airflow_instances.c.url, airflow_instances.c.api_version)
                           .where(airflow_instances.c.uid.in_([run["uid"], owner or run["uid"]]))
                           .order_by(airflow_instances.c.id).limit(1)).first()
    except Exception:  # noqa: BLE001 - no registry table on an older database
        return None
    base = _web_base(row.url) if row is not None else None
    if base is None:
        return None
    dag, run_id, task = (quote(str(run["dag_id"]), safe=""), quote(str(run["run_id"]), safe=""),
                         quote(str(attempt["task_id"]), safe=""))
    map_index = attempt.get("map_index") if attempt.get("map_index") is not None else -1
    if row.api_version == "v1":
        grid = f"{base}/dags/{dag}/grid?" + urlencode({"dag_run_id": run["run_id"]})
        log_query = {"dag_run_id": run["run_id"], "task_id": attempt["task_id"], "tab": "logs"}
        if map_index >= 0:
            log_query["map_index"] = map_index
        return {"log": f"{base}/dags/{dag}/grid?" + urlencode(log_query), "grid": grid}
    task_path = f"{base}/dags/{dag}/runs/{run_id}/tasks/{task}" + (f"/mapped/{map_index}" if map_index >= 0 else "")
    log = task_path + (f"?try_number={attempt['try_number']}" if attempt.get("try_number") else "")
    return {"log": log, "grid": f"{base}/dags/{dag}/runs/{run_id}"}


def attempt_by_context(conn: Connection, dag_id: str, dag_run_id: str, task_id: str, try_number: int | None,
                       map_index: int, uid: str | None = None) -> str | None:
    """The tracker id of the attempt Airflow names (try None = the latest); `uid`, when given, picks the instance
    (or an instance it is an alias of) among DAG runs sharing the dag_id and run_id."""
    stmt = (select(task_attempts.c.id, dag_runs.c.uid)
            .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
            .where(dag_runs.c.dag_id == dag_id, dag_runs.c.run_id == dag_run_id,
                   task_attempts.c.task_id == task_id, task_attempts.c.map_index == map_index))
    if try_number is not None:
        stmt = stmt.where(task_attempts.c.try_number == try_number)
    rows = conn.execute(stmt.order_by(task_attempts.c.try_number.desc(), task_attempts.c.id)).all()
    if uid and len({r.uid for r in rows}) > 1:
        owners = {uid}
        try:
            from runlink.tracker.airflow_instances import instance_aliases

            owners |= {r[0] for r in conn.execute(select(instance_aliases.c.uid)
                                                  .where(instance_aliases.c.alias == uid))}
        except ImportError:
            pass
        rows = [r for r in rows if r.uid in owners]
    return rows[0].id if rows else None


# ---------------------------------------------------------------- a Spark application

GC_RATIO = 0.1
UNEVEN_RATIO = 3.0
#: a stage is skewed when its slowest task took this many times its median task, and at least SKEW_MIN_MS
SKEW_RATIO = 3.0
SKEW_MIN_MS = 1000


def _lanes(items: list[dict[str, Any]]) -> int:
    """Greedy interval packing: each item gets `lane` so bars that overlap in time do not overlap on screen."""
    ends: list[float] = []
    for item in sorted(items, key=lambda i: (i["x0"], i["x1"])):
        for lane, end in enumerate(ends):
            if end <= item["x0"]:
                ends[lane] = item["x1"]
                item["lane"] = lane
                break
        else:
            item["lane"] = len(ends)
            ends.append(item["x1"])
    return len(ends)


def spark_app_view(conn: Connection, pk: str) -> dict[str, Any] | None:
    """A Spark app with analysis: stage durations, slowest stage, spill/GC/uneven-task flags, a timeline layout
    (x in seconds from app start, lanes), queries with their datasets, failures."""
    app = queries.spark_app(conn, pk)
    if app is None:
        return None
    app.update(spark_ui_links(app))
    app["conf"] = mask_value(app.get("conf"))
    cores = sum((e.get("cores") or 0) for e in app.get("executors", [])) or None
    times = [parse_instant(app.get("start_time"))]
    for s in app["stages"]:
        times.append(parse_instant(s["submission_time"]))
    for j in app["jobs"]:
        times.append(parse_instant(j.get("submission_time")))
    known = [t for t in times if t is not None]
    t0 = min(known) if known else None
    end_candidates = [parse_instant(app.get("end_time"))]
    end_candidates += [parse_instant(s["completion_time"]) for s in app["stages"]]
    end_candidates += [parse_instant(j.get("completion_time")) for j in app["jobs"]]
    ends = [t for t in end_candidates if t is not None]
    t1 = max(ends + known) if (ends or known) else None
    span = max((t1 - t0).total_seconds(), 0.001) if t0 and t1 else 0.001

    def rel(value: str | None, default: float) -> float:
        t = parse_instant(value)
        return (t - t0).total_seconds() if t is not None and t0 is not None else default

    stage_durations: list[float] = []
    for s in app["stages"]:
        m = s["metrics"]
        s["duration_s"] = seconds_between(s["submission_time"], s["completion_time"])
        if s["duration_s"] is not None:
            stage_durations.append(s["duration_s"])
        run_ms = m.get("executor_run_time_ms") or 0
        gc_ms = m.get("jvm_gc_time_ms") or 0
        spill = (m.get("memory_spilled_bytes") or 0) + (m.get("disk_spilled_bytes") or 0)
        flags = []
        if spill:
            flags.append("spill")
        if run_ms and gc_ms / run_ms > GC_RATIO:
            flags.append("gc")
        if s["status"] == "failed" or (s.get("failed_tasks") or 0) > 0:
            flags.append("failed tasks" if s["status"] != "failed" else "failed")
        # skew, measured: the listener's task distribution (max / median task duration); where none came (an
        # older listener), uneven tasks estimated: the stage's wall time much longer than its work spread over
        # the slots it had
        durations = ((s.get("distribution") or {}).get("metrics") or {}).get("duration_ms") or {}
        slots = min(cores or 1, s.get("num_tasks") or 1)
        s["uneven_ratio"] = None
        if durations:
            if (s.get("task_skew") or 0) >= SKEW_RATIO and (durations.get("max") or 0) >= SKEW_MIN_MS:
                flags.append("skew")
        elif s["duration_s"] and run_ms and slots > 1:
            ideal = run_ms / 1000 / slots
            s["uneven_ratio"] = round(s["duration_s"] / ideal, 2) if ideal > 0 else None
            if s["uneven_ratio"] and s["uneven_ratio"] > UNEVEN_RATIO and s["duration_s"] > 1:
                flags.append("uneven tasks")
        s["gc_ratio"] = round(gc_ms / run_ms, 3) if run_ms else None
        s["spill_bytes"] = spill
        s["flags"] = flags
        x0 = rel(s["submission_time"], 0.0)
        x1 = rel(s["completion_time"], span)
        s["x0"], s["x1"] = x0, max(x1, x0)
    slowest = max(app["stages"], key=lambda s: s["duration_s"] or -1) if stage_durations else None
    stage_lanes = _lanes(app["stages"])
    for j in app["jobs"]:
        j["duration_s"] = seconds_between(j.get("submission_time"), j.get("completion_time"))
        j["x0"] = rel(j.get("submission_time"), 0.0)
        j["x1"] = max(rel(j.get("completion_time"), span), j["x0"])
    job_lanes = _lanes(app["jobs"])
    for query in app["queries"]:
        if isinstance(query.get("error"), (dict, str)):
            query["error_text"] = error_text(query["error"])
    failures = (
        [{"kind": "job", "id": j["job_id"], "error": j.get("failure_reason")} for j in app["jobs"]
         if j.get("result") == "failed"]
        + [{"kind": "stage", "id": f"{s['stage_id']}.{s['attempt_id']}", "error": s.get("failure_reason")}
           for s in app["stages"] if s["status"] == "failed"]
        + [{"kind": "query", "id": q.get("execution_id"), "error": q.get("error_text") or "failed"}
           for q in app["queries"] if not q.get("success")]
    )
    app["analysis"] = {
        "span_s": span, "t0": t0.isoformat() if t0 else None, "cores": cores,
        "slowest_stage": f"{slowest['stage_id']}.{slowest['attempt_id']}" if slowest else None,
        "median_stage_s": _median(stage_durations), "stage_lanes": stage_lanes, "job_lanes": job_lanes,
        "flagged_stages": sum(1 for s in app["stages"] if s["flags"]),
        "total_run_time_ms": sum(s["metrics"].get("executor_run_time_ms") or 0 for s in app["stages"]),
        "total_gc_ms": sum(s["metrics"].get("jvm_gc_time_ms") or 0 for s in app["stages"]),
        "total_spill_bytes": sum(s["spill_bytes"] for s in app["stages"]),
    }
    app["failures"] = failures
    app["duration_s"] = seconds_between(app.get("start_time"), app.get("end_time"))
    if app.get("task_attempt_pk"):
        owner = _rows(conn, select(task_attempts.c.task_id, task_attempts.c.try_number, dag_runs.c.dag_id,
                                   dag_runs.c.run_id, dag_runs.c.id.label("run_pk"))
                      .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
                      .where(task_attempts.c.id == app["task_attempt_pk"]))
        app["owner"] = owner[0] if owner else None
    elif app.get("dag_run_pk"):
        owner = _rows(conn, select(dag_runs.c.dag_id, dag_runs.c.run_id, dag_runs.c.id.label("run_pk"))
                      .where(dag_runs.c.id == app["dag_run_pk"]))
        app["owner"] = owner[0] if owner else None
    else:
        app["owner"] = None
    return app


def stage_key(stage: dict[str, Any]) -> str:
    return f"{stage['stage_id']}.{stage['attempt_id']}"


# ---------------------------------------------------------------- datasets

def _dataset_label(row: dict[str, Any]) -> str:
    return row.get("table_name") or row.get("path") or row.get("uri") or row.get("identity") or "?"


DATASETS_PAGE = 100
_DATASET_NAME = func.substr(datasets.c.identity, 1, 200)  # the index's expression (0016)
DATASETS_ORDER = (keyset.Order(_DATASET_NAME, "name_key"), keyset.Order(datasets.c.id, "id"))


def datasets_view(conn: Connection, *, q: str | None = None, cursor: str | None = None,
                  limit: int = DATASETS_PAGE) -> dict[str, Any]:
    """Datasets by name (identity), a keyset page from `cursor`, each with how often it is read and written and
    when last (counted for the page's datasets only, through their operations' index)."""
    stmt = select(datasets, _DATASET_NAME.label("name_key"))
    if q:
        stmt = stmt.where(datasets.c.identity.contains(q, autoescape=True))
    result = keyset_page(conn, stmt, DATASETS_ORDER, cursor, limit)
    rows = result["items"]
    is_read = case((dataset_ops.c.operation == "read", 1), else_=0)
    is_write = case((dataset_ops.c.operation == "write", 1), else_=0)
    stats = {r.dataset_pk: r for r in conn.execute(
        select(dataset_ops.c.dataset_pk, func.count().label("ops"), func.sum(is_read).label("reads"),
               func.sum(is_write).label("writes"), func.max(dataset_ops.c.time).label("last_time"))
        .where(dataset_ops.c.dataset_pk.in_([r["id"] for r in rows])).group_by(dataset_ops.c.dataset_pk))}
    for row in rows:
        row.pop("name_key", None)
        found_stats = stats.get(row["id"])
        row.update(ops=found_stats.ops if found_stats else 0, reads=found_stats.reads if found_stats else 0,
                   writes=found_stats.writes if found_stats else 0,
                   last_time=found_stats.last_time if found_stats else None)
        row["label"] = _dataset_label(row)
    return {**result, "filters": {"q": q}}


def dataset_view(conn: Connection, pk: str) -> dict[str, Any] | None:
    """One dataset: every read and write with the task that did it, rows over time."""
    found = _rows(conn, select(datasets).where(datasets.c.id == pk))
    if not found:
        return None
    ds = found[0]
    ds["label"] = _dataset_label(ds)
    ops = _rows(conn, select(
        dataset_ops.c.id, dataset_ops.c.operation, dataset_ops.c.name, dataset_ops.c.mode, dataset_ops.c.format,
        dataset_ops.c.rows, dataset_ops.c.bytes, dataset_ops.c.files, dataset_ops.c.time, dataset_ops.c.spark_app_pk,
        dataset_ops.c.schema, dataset_ops.c.sql_query_pk, dataset_ops.c.success, dataset_ops.c.span_id,
        contexts.c.attempt_pk, contexts.c.run_pk, contexts.c.dag_id, contexts.c.task_id, contexts.c.synthetic)
        .outerjoin(contexts, contexts.c.id == dataset_ops.c.context_id)
        .where(dataset_ops.c.dataset_pk == pk).order_by(dataset_ops.c.time, dataset_ops.c.id))
    schema = None
    for op in ops:
        op["synthetic"] = bool(op["synthetic"]) if op["synthetic"] is not None else None
        if op["schema"]:
            schema = _loads(op["schema"])
        op.pop("schema")
    tasks: dict[tuple, dict[str, Any]] = {}
    for op in ops:
        key = (op["dag_id"], op["task_id"], op["operation"])
        entry = tasks.setdefault(key, {"dag_id": op["dag_id"], "task_id": op["task_id"], "operation": op["operation"],
                                       "count": 0, "last_time": None, "last_attempt_pk": None})
        entry["count"] += 1
        entry["last_time"] = op["time"]
        entry["last_attempt_pk"] = op["attempt_pk"]
    return {"dataset": ds, "operations": ops, "tasks": list(tasks.values()), "schema": schema,
            "rows_series": [{"time": o["time"], "rows": o["rows"], "operation": o["operation"]} for o in ops
                            if o["rows"] is not None],
            "bytes_series": [{"time": o["time"], "bytes": o["bytes"], "operation": o["operation"]} for o in ops
                             if o.get("bytes") is not None]}


# ---------------------------------------------------------------- search helpers for filters

def filter_options(conn: Connection) -> dict[str, Any]:
    """Values for the filter drop-downs (instances, states)."""
    uids = [r[0] for r in conn.execute(select(instances.c.uid).order_by(instances.c.uid)).all()]
    states = sorted(_walk(conn, dag_runs.c.state, "", 100, False, []))  # distinct, by the (state, ...) index
    return {"instances": uids, "states": states}


def executor_hosts(conn: Connection, app_pk: str) -> list[str]:
    return [r[0] for r in conn.execute(select(spark_executors.c.host).where(spark_executors.c.spark_app_pk == app_pk))]


# ---------------------------------------------------------------- page data (shared by HTML and JSON)

def found(value: Any, what: str) -> Any:
    """The value, or a 404 naming what is missing."""
    if value is None:
        raise HTTPException(404, f"{what} not found")
    return value


def time_filter(window: str | None, since: str | None, until: str | None) -> tuple[str | None, str | None]:
    """`window` (1h/24h/7d/30d) or explicit ISO `since`/`until` -> stored instants (422 on garbage)."""
    try:
        since_i = instant(since) if since else None
        until_i = instant(until) if until else None
    except ContextError:
        raise HTTPException(422, {"message": "since/until: not an ISO-8601 instant", "field": "since"}) from None
    if window and window in WINDOWS and not since_i:
        since_i = (datetime.now(timezone.utc) - WINDOWS[window]).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return since_i, until_i


def dags_page(conn: Connection, instance: str | None, state: str | None, window: str | None, since: str | None,
              until: str | None, q: str | None, cursor: str | None = None, limit: int = DAGS_PAGE) -> dict[str, Any]:
    since_i, until_i = time_filter(window, since, until)
    view = dags_view(conn, instance=instance, state=state, since=since_i, until=until_i, q=q, cursor=cursor,
                     limit=limit)
    view["filters"]["window"] = window
    view["options"] = filter_options(conn)
    view["open_alerts"] = _open_alert_counts(conn)
    return view


def _open_alert_counts(conn: Connection) -> dict[str, int]:
    counts: dict[str, int] = {}
    for alert in alert_rules.list_alerts(conn, state="open", limit=1000):
        dag_id = (alert.get("links") or {}).get("dag_id")
        if dag_id:
            counts[dag_id] = counts.get(dag_id, 0) + 1
    return counts


def dag_page(conn: Connection, dag_id: str, instance: str | None, state: str | None, window: str | None,
             since: str | None, until: str | None, cursor: str | None = None, limit: int = 100) -> dict[str, Any]:
    since_i, until_i = time_filter(window, since, until)
    view = found(dag_view(conn, dag_id, instance=instance, state=state, since=since_i, until=until_i,
                          cursor=cursor, limit=limit), "DAG")
    view["filters"]["window"] = window
    view["options"] = filter_options(conn)
    view["alerts"] = [a for a in alert_rules.list_alerts(conn, limit=50)
                      if (a.get("links") or {}).get("dag_id") == dag_id][:20]
    return view


def stage_page(conn: Connection, app_pk: str, stage_id: int, attempt_id: int) -> dict[str, Any]:
    app = found(spark_app_view(conn, app_pk), "Spark app")
    stage = next((s for s in app["stages"] if s["stage_id"] == stage_id and s["attempt_id"] == attempt_id), None)
    stage = found(stage, "stage")
    jobs = [j for j in app["jobs"] if j["job_id"] in (stage.get("job_ids") or [])]
    others = [s for s in app["stages"] if s["stage_id"] == stage_id and s["attempt_id"] != attempt_id]
    return {"app": {k: app[k] for k in ("id", "app_id", "name", "state", "owner", "analysis", "start_time",
                                        "end_time")},
            "stage": stage, "jobs": jobs, "other_attempts": others}


def alerts_page(conn: Connection, cursor: str | None = None) -> dict[str, Any]:
    """Open alerts, a keyset page of the resolved ones (`next`/`previous` as `cursor`), the rules."""
    try:
        recent = alert_rules.alerts_page(conn, state="resolved", cursor=cursor, limit=50)
    except ValueError:
        raise HTTPException(422, {"message": "cursor: not a cursor of this listing", "field": "cursor"}) from None
    return {"open": alert_rules.list_alerts(conn, state="open"), "recent": recent["items"], "next": recent["next"],
            "previous": recent["previous"], "rules": alert_rules.list_rules(conn)}


__all__ = [
    "instance_view", "spark_apps_view",
    "alerts_page", "dag_page", "dag_run_view", "dag_view", "dags_page", "dags_view", "dataset_view", "datasets_view",
    "filter_options", "found", "instances_view", "spark_app_view", "stage_page", "task_attempt_view",
]
