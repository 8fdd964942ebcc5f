"""Rows -> the database in the caller's transaction: dedupe against stored ids, bulk upserts, relink when needed.

Runs under the write lock (on PostgreSQL the batch's own `lock_keys`), so it only writes: the rows were made by
`rows.collect` beforehand (unless the batch turns out to be a partial replay, then only the events not stored yet
are collected again here).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection

from runlink.context import NormalizedContext
from runlink.tracker import relink
from runlink.tracker.alerts.models import ANY_RULE_ENABLED
from runlink.tracker.ingest import audit
from runlink.tracker.ingest.prepare import Prepared, id_hash, spark_app_pk
from runlink.tracker.ingest.rows import (
    EVENT_ROW,
    JOB_END_COLS,
    JOB_END_ROW,
    JOB_START_COLS,
    JOB_START_ROW,
    METRIC_ROW,
    STAGE_ROW,
    STREAM_GROUPS,
    Rows,
    collect,
)
from runlink.tracker.models import (
    STAGE_METRICS,
    agent_health,
    contexts,
    dags,
    dataset_ops,
    datasets,
    event_batches,
    events,
    instances,
    log_chunks,
    metrics,
    spans,
    spark_app_contexts,
    spark_apps,
    spark_executors,
    spark_jobs,
    spark_stages,
    sql_queries,
    sql_statements,
    state_events,
    streaming_queries,
)
from runlink.tracker.openlineage.tables import ANY_PENDING
from runlink.tracker.sqlutil import insert_ignore, insert_rows, pipelined, run, select_in, select_many, upsert_lww

_APP_START_COLS = ("name", "spark_version", "scala_version", "master", "deploy_mode", "user", "start_time", "ui_url",
                   "conf")
_APP_END_COLS = ("end_time", "exit_code", "state")
_STAGE_COLS = ("name", "num_tasks", "failed_tasks", "killed_tasks", "submission_time", "completion_time", "status",
               "failure_reason", "job_ids", *STAGE_METRICS, "context_id", "callsite", "distribution", "task_skew")
_APP_CONTEXT_ROW = ("id", "app_id", "attempt_id", "context_rank", "context_id")
_DAG_COLS = ("uid", "dag_id", "description", "schedule", "owners", "tags", "fileloc", "is_paused", "next_run_date",
             "tasks", "is_active")


#: the ids of a batch already stored: a hash match is only a candidate, stored ids are compared in full
_KNOWN_IDS = "SELECT id FROM events WHERE id_hash IN ({})"
_KNOWN_CONTEXTS = "SELECT id FROM contexts WHERE id IN ({})"
#: an application's highest stored stage and job ids (one index descent each): under the batch's `app:` lock,
#: a stage or job above them is new, so it is a plain insert (see `sqlutil.upsert_lww`'s `fresh`)
_STORED_MAXIMA = ("SELECT (SELECT max(stage_id) FROM spark_stages WHERE spark_app_pk = ?) AS stage_id, "
                  "(SELECT max(job_id) FROM spark_jobs WHERE spark_app_pk = ?) AS job_id")


def raw_events(conn: Connection, event_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The stored (sanitized) JSON of events, by id, from their batches' audit copies."""
    found: dict[str, dict[str, Any]] = {}
    hashes = [id_hash(event_id) for event_id in event_ids]
    locations = select_in(conn, "SELECT id, batch_id, position FROM events WHERE id_hash IN ({})", hashes)
    wanted = set(event_ids)
    bodies: dict[str, list] = {}
    for event_id, batch_id, position in locations:
        if event_id not in wanted or batch_id is None:
            continue
        if batch_id not in bodies:
            body = run(conn, "SELECT body FROM event_batches WHERE id = ?", (batch_id,)).scalar_one()
            bodies[batch_id] = audit.unpack(body)
        found[event_id] = bodies[batch_id][position]
    return found


def lock_keys(prepared: Prepared, rows: Rows) -> set[str]:
    """The write locks a batch takes on PostgreSQL (`db.Database.write`): batches with disjoint keys are stored
    in parallel. `dag:<dag_id>` for every dag_id it brings contexts or definitions of (relink reads and rewrites
    that dag_id's contexts, runs and attempts); `app:<pk>` for every Spark application it starts or ends (a
    synthetic run is folded from its application); and for an event without a context, its application's key,
    else `nodag`. So every event always takes one same key: two replays of it meet there before the id check.
    And `app:<pk>` for every Spark application it has stages or jobs of: their new ids are plain inserts (`store`).
    The rest are row-level upserts, correct without a lock."""
    keys = {"dag:" + ctx.dag_id for ctx, _synthetic in rows.contexts.values()}
    keys.update("dag:" + d["dag_id"] for d in rows.dags)
    keys.update("app:" + pk for pk in rows.touched_apps)
    keys.update("app:" + pk for pk in _numbered_apps(rows))
    work = prepared.work
    for index in rows.keep:
        if prepared.contexts[index] is None and not (work and work[index]):
            spark = prepared.events[index].get("spark")
            keys.add("app:" + spark_app_pk(spark["app_id"], spark.get("attempt_id")) if spark else "nodag")
    return keys


def store(conn: Connection, prepared: Prepared, rows: Rows | None = None) -> tuple[int, int]:
    """Write a prepared batch (inside the caller's transaction, holding the batch's `lock_keys`, or all), with
    its rows from `collect()` when the caller made them outside the write lock. Returns (accepted, duplicates)."""
    if rows is None:
        rows = collect(prepared)
    hashes = prepared.hashes
    # the aliases (a handful of rows) ride along: the DAG definitions and relink need them, one round trip less;
    # so do the after-commit hooks' questions (Prepared.lineage_waiting, .alert_rules_enabled: does an OpenLineage
    # event wait, is an alert rule enabled), which spares each hook a read (a round trip on PostgreSQL) per batch;
    # on PostgreSQL so do the highest stored stage and job ids of the batch's Spark applications (_STORED_MAXIMA).
    # SQLite checks a key as it inserts it: there an upsert costs no more than an insert, and the read would not
    # pay for itself
    numbered = _numbered_apps(rows) if conn.dialect.name == "postgresql" else []
    stored, stored_contexts, alias_rows, lineage_rows, rule_rows, *maxima = select_many(conn, [
        (_KNOWN_IDS, list(set(hashes.values())), ()), (_KNOWN_CONTEXTS, list(rows.contexts), ()),
        (relink.ALIASES, None, ()), (ANY_PENDING, None, ()), (ANY_RULE_ENABLED, None, (True,)),
        *((_STORED_MAXIMA, None, (pk, pk)) for pk in numbered)])
    uid_aliases = dict(alias_rows)
    prepared.lineage_waiting = bool(lineage_rows)
    prepared.alert_rules_enabled = bool(rule_rows)
    known = {row[0] for row in stored if row[0] in hashes}
    if known:  # a replay: only the events not stored yet (their contexts are among those read)
        keep = [index for event_id, index in prepared.first.items() if event_id not in known]
        if not keep:
            return 0, len(prepared.events)
        rows = collect(prepared, keep)
    keep = rows.keep
    duplicates = len(prepared.events) - len(keep)
    relink_dags = _store_dags(conn, rows, uid_aliases)
    new_contexts, new_by_dag = _new_contexts(rows, {row[0] for row in stored_contexts})
    with pipelined(conn):  # writes only from here: on PostgreSQL, one round trip for all of them
        insert_ignore(conn, contexts, new_contexts)
        # plain inserts: the id check above, under the batch's locks, is what keeps events (and metrics) unique
        insert_rows(conn, event_batches, [rows.batch], ("id", "received_at", "body"))
        insert_rows(conn, events, rows.events, EVENT_ROW)
        insert_rows(conn, metrics, rows.metrics, METRIC_ROW)
        _store_rows(conn, prepared, rows, dict(zip(numbered, (tuple(found[0]) for found in maxima), strict=True)))
        # what relink reads first rides behind the writes (it must see them): no round trip of its own
        ahead = relink.read_ahead_for(conn, relink_dags, rows.touched_contexts, rows.touched_apps, new_by_dag)
    relink.apply(conn, relink_dags, rows.touched_contexts, rows.touched_apps, new_by_dag, uid_aliases, ahead)
    return len(keep), duplicates


def _numbered_apps(rows: Rows) -> list[str]:
    """The Spark applications a batch has stages or jobs of, sorted."""
    return sorted(({row[0] for row in rows.stages} | {row[0] for row in rows.job_starts}) - {None})


def _above(maxima: dict[str, tuple[Any, ...]], column: int) -> Callable[[tuple], bool] | None:
    """Whether a (spark_app_pk, id, ...) row's id is above its application's highest stored one (`column` of
    `_STORED_MAXIMA`), so that no stored row has its key. An application not read is never so; None when none was
    read."""
    if not maxima:
        return None

    def fresh(row: tuple) -> bool:
        found = maxima.get(row[0])
        if found is None:
            return False
        highest = found[column]
        return highest is None or row[1] > highest
    return fresh


def _store_rows(conn: Connection, prepared: Prepared, rows: Rows, maxima: dict[str, tuple[Any, ...]]) -> None:
    """The batch's rows that need no read first: instances, Spark apps (each made to exist, then start, end and
    context merged by stamps), jobs, stages (new ids by plain insert, from `maxima`: per application, its highest
    stored stage and job ids), executors, queries, streams, datasets, spans, logs, state events."""
    insert_ignore(conn, instances, [{"uid": uid, "first_seen": prepared.received_at} for uid in sorted(rows.instances)])
    # Spark apps: make sure each exists, then merge start/end/context by stamps
    if rows.apps:
        insert_ignore(conn, spark_apps, list(rows.apps.values()))
        upsert_lww(conn, spark_apps, rows.app_starts, ("id",), "start_stamp", _APP_START_COLS)
        upsert_lww(conn, spark_apps, rows.app_ends, ("id",), "end_stamp", _APP_END_COLS)
        upsert_lww(conn, spark_apps, [(pk, app["app_id"], app["attempt_id"], *rows.app_contexts[pk])
                                      for pk, app in rows.apps.items() if pk in rows.app_contexts],
                   ("id",), "context_rank", ("context_id",), _APP_CONTEXT_ROW)
    upsert_lww(conn, spark_jobs, rows.job_starts, ("spark_app_pk", "job_id"), "start_stamp", JOB_START_COLS,
               JOB_START_ROW, fresh=_above(maxima, 1))
    upsert_lww(conn, spark_jobs, rows.job_ends, ("spark_app_pk", "job_id"), "end_stamp", JOB_END_COLS, JOB_END_ROW)
    upsert_lww(conn, spark_stages, rows.stages, ("spark_app_pk", "stage_id", "attempt_id"), "stamp", _STAGE_COLS,
               STAGE_ROW, fresh=_above(maxima, 0))
    upsert_lww(conn, spark_executors, rows.exec_added, ("spark_app_pk", "executor_id"), "add_stamp",
               ("host", "cores", "added_time"))
    upsert_lww(conn, spark_executors, rows.exec_removed, ("spark_app_pk", "executor_id"), "remove_stamp",
               ("removed_time", "reason"))
    insert_ignore(conn, spark_app_contexts, [{"spark_app_pk": app_pk, "context_id": ctx_pk}
                                             for app_pk, ctx_pk in sorted(rows.app_users)])
    insert_ignore(conn, sql_queries, rows.queries)
    insert_ignore(conn, sql_statements, rows.sql_statements)
    for stamp, updated in STREAM_GROUPS.items():
        upsert_lww(conn, streaming_queries, rows.streams[stamp], ("spark_app_pk", "run_id"), stamp, updated)
    insert_ignore(conn, datasets, list(rows.datasets.values()))
    insert_ignore(conn, dataset_ops, rows.dataset_ops)
    insert_ignore(conn, spans, rows.spans)
    insert_ignore(conn, log_chunks, rows.logs)
    insert_ignore(conn, agent_health, rows.health)
    insert_ignore(conn, state_events, rows.state_events)


def _store_dags(conn: Connection, rows: Rows, uid_aliases: dict[str, str]) -> set[str]:
    """Upsert the DAG definitions; returns the dag_ids to relink (a new (uid, dag_id) changes the known
    instances of that dag_id)."""
    relink_dags: set[str] = set()
    if not rows.dags:
        return relink_dags
    for d in rows.dags:  # a definition under an alias uid is its instance's
        if d["uid"] in uid_aliases:
            d["uid"] = uid_aliases[d["uid"]]
            d["id"] = relink.dag_pk(d["uid"], d["dag_id"])
    dag_pks = list({d["id"] for d in rows.dags})
    known_tasks = dict(select_in(conn, "SELECT id, tasks FROM dags WHERE id IN ({})", dag_pks))
    relink_dags.update(d["dag_id"] for d in rows.dags if d["id"] not in known_tasks and d["uid"])
    for d in rows.dags:  # a definition without tasks (a DAG gone from Airflow) keeps the structure known
        if d["tasks"] is None:
            d["tasks"] = known_tasks.get(d["id"])
    upsert_lww(conn, dags, rows.dags, ("id",), "stamp", _DAG_COLS)
    return relink_dags


def _new_contexts(rows: Rows, known: set[str]) -> tuple[list[dict], dict[str, list[NormalizedContext]]]:
    """The rows of the batch's new distinct contexts (those not in `known`, the stored ones), unlinked, to insert;
    and the same contexts by dag_id, for relink with their neighbourhood."""
    new_by_dag: dict[str, list[NormalizedContext]] = {}
    new: list[dict] = []
    if not rows.contexts:
        return new, new_by_dag
    for pk, (ctx, synthetic) in rows.contexts.items():
        if pk in known:
            continue
        new.append({"id": pk, "uid": ctx.uid, "dag_id": ctx.dag_id, "dag_run_id": ctx.dag_run_id,
                    "logical_date": ctx.logical_date, "logical_day": ctx.logical_day,
                    "date_only": ctx.date_only, "task_id": ctx.task_id, "try_number": ctx.try_number,
                    "map_index": ctx.map_index, "synthetic": synthetic, "run_pk": None, "attempt_pk": None,
                    "ambiguous": False})
        new_by_dag.setdefault(ctx.dag_id, []).append(ctx)
    return new, new_by_dag
