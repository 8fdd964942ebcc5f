"""Applies linking.py to the database: when new distinct contexts (or instances) arrive for a dag_id,
recompute that dag_id's links, move the contexts whose run/attempt changed, and rebuild the affected
DAG-run and task-attempt rows from their stored state events with merge.py (emptied placeholders go away).

Runs and attempts are *derived* rows: a pure fold of the state events of their contexts, so the same
events give the same rows in any order, and a relink needs no field-by-field moving.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, Table

from runlink.context import NormalizedContext, stored_instant
from runlink.ids import NAMESPACE
from runlink.tracker import linking, merge
from runlink.tracker.models import contexts, dag_runs, task_attempts
from runlink.tracker.sqlutil import (
    Read,
    delete_in,
    execute_many,
    insert_rows,
    pipelined,
    read_ahead,
    run,
    select_in,
    select_many,
)

# Plain driver SQL throughout: a relink runs on most batches, and SQLAlchemy's per-statement compile and
# coercion cost more than the queries did. Rows come back by column name as with Core.
_CONTEXT_COLS = ", ".join(c.name for c in contexts.c)
_DAG_RUN_COLS = ", ".join(c.name for c in dag_runs.c)

_RUN_FIELDS = ("state", "start_date", "end_date", "run_type", "conf", "data_interval_start", "data_interval_end",
               "triggered_by", "note")
_ATTEMPT_FIELDS = ("state", "start_date", "end_date", "duration_s", "operator", "error", "params", "hostname", "pid",
                   "source_code", "return_value", "log_url", "pool", "queue", "executor", "max_tries")
_INSTANTS = frozenset({"start_date", "end_date", "data_interval_start", "data_interval_end"})
_JSON_FIELDS = frozenset({"conf", "error", "params"})


def dag_pk(uid: str | None, dag_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, "dag:" + (uid or "") + "|" + dag_id))


def _ctx_of(row: Any) -> NormalizedContext:
    return NormalizedContext(
        uid=row.uid, dag_id=row.dag_id, dag_run_id=row.dag_run_id, logical_date=row.logical_date,
        logical_day=row.logical_day, date_only=bool(row.date_only), task_id=row.task_id,
        try_number=row.try_number, map_index=row.map_index,
    )


def _replace(conn: Connection, table: Table, pks: list[str], rows: list[dict[str, Any]]) -> None:
    """Delete the rows of `pks`, insert `rows` (derived rows are rebuilt whole); writes only, so it may go in
    `pipelined`."""
    delete_in(conn, table.name, "id", pks)
    if rows:
        columns = tuple(rows[0])
        insert_rows(conn, table, [tuple(row[c] for c in columns) for row in rows], columns)


_DAG_UIDS = "SELECT uid FROM dags WHERE dag_id = ? AND uid IS NOT NULL"
#: the distinct uids of a dag_id's contexts, one index probe per uid (a loose index scan on ix_contexts_dag_uid):
#: a DISTINCT read every context of the dag_id, on every batch, however long its history
_CONTEXT_UIDS = """WITH RECURSIVE found(uid) AS (
    SELECT min(uid) FROM contexts WHERE dag_id = ?
    UNION ALL
    SELECT (SELECT min(uid) FROM contexts WHERE dag_id = ? AND uid > found.uid) FROM found WHERE found.uid IS NOT NULL
) SELECT uid FROM found WHERE uid IS NOT NULL"""
#: up to n + 1 stored contexts of a (dag_id, uid): whether there are more than n, without counting them all
_SOME_CONTEXTS = "SELECT count(*) FROM (SELECT 1 FROM contexts WHERE dag_id = ? AND uid = ? LIMIT ?) AS first_few"


def _uid_reads(dag_id: str, new_contexts: list[NormalizedContext] | None) -> tuple[list[Read], list[str],
                                                                                   Counter]:
    """The reads `_uids` folds (the dag_id's definition uids, its context uids, then per uid of the new contexts
    whether few contexts have it), the new contexts' uids and their counts."""
    new_counts = Counter(c.uid for c in new_contexts or () if c.uid is not None)
    uids = sorted(new_counts)
    reads: list[Read] = [(_DAG_UIDS, None, (dag_id,)), (_CONTEXT_UIDS, None, (dag_id, dag_id)),
                         *((_SOME_CONTEXTS, None, (dag_id, uid, new_counts[uid] + 1)) for uid in uids)]
    return reads, uids, new_counts


def _uids(results: list[list[Any]], uids: list[str], new_counts: Counter) -> tuple[set[str], set[str], bool]:
    """(the uids of the dag_id's definitions, those of its contexts, whether a uid of the new (already inserted,
    distinct) contexts is known for the dag_id from nothing else: no DAG definition and no other context), from
    the rows of `_uid_reads`."""
    dag_rows, context_rows, *some = results
    dag_uids = {row[0] for row in dag_rows}
    alone = any(uid not in dag_uids and rows[0][0] <= new_counts[uid] for uid, rows in zip(uids, some, strict=True))
    return dag_uids, {row[0] for row in context_rows}, alone


_UNDATED = (f"SELECT {_CONTEXT_COLS} FROM contexts WHERE dag_id = ? AND logical_day IS NULL "
            "AND dag_run_id IS NULL")
_BY_DAY = f"SELECT {_CONTEXT_COLS} FROM contexts WHERE dag_id = ? AND logical_day IN ({{}})"
_BY_RUN = f"SELECT {_CONTEXT_COLS} FROM contexts WHERE dag_id = ? AND dag_run_id IN ({{}})"


def _ring_reads(dag_id: str, days: set[str], run_ids: set[str]) -> list[Read]:
    """The contexts of `dag_id` on these days or of these dag_run_ids: one ring of a neighbourhood."""
    return [(_BY_DAY, sorted(days), (dag_id,)), (_BY_RUN, sorted(run_ids), (dag_id,))]


def _first_ring_reads(dag_id: str, seeds: list[NormalizedContext]) -> list[Read]:
    """The seeds' own days and run ids, and the dag's undated placeholder run when a seed has neither."""
    ring = _ring_reads(dag_id, {s.logical_day for s in seeds if s.logical_day},
                       {s.dag_run_id for s in seeds if s.dag_run_id})
    if any(s.logical_day is None and s.dag_run_id is None for s in seeds):
        ring.append((_UNDATED, None, (dag_id,)))
    return ring


def _neighbourhood(conn: Connection, dag_id: str, seeds: list[NormalizedContext],
                   first_ring: list[list[Any]]) -> list[Any]:
    """The contexts of `dag_id` whose links can depend on the `seeds` (new contexts): linking joins contexts only
    through equal dag_run_ids and dates of one UTC day (rules 2-5), so the closure of the seeds' run ids and
    days holds every context whose run or attempt a seed can change; the rest of the history is not read.
    `first_ring` holds the rows of `_first_ring_reads` (read ahead, behind the batch's writes)."""
    rows: dict[str, Any] = {}
    days = {s.logical_day for s in seeds if s.logical_day}
    run_ids = {s.dag_run_id for s in seeds if s.dag_run_id}
    found = [row for ring in first_ring for row in ring]
    while found:
        for row in found:
            rows[row.id] = row
        todo_days = {r.logical_day for r in found if r.logical_day} - days
        todo_runs = {r.dag_run_id for r in found if r.dag_run_id} - run_ids
        if not todo_days and not todo_runs:
            break
        days |= todo_days
        run_ids |= todo_runs
        found = [row for ring in select_many(conn, _ring_reads(dag_id, todo_days, todo_runs)) for row in ring]
    return list(rows.values())


#: alias uid -> the uid of the instance it names (`runlink airflow alias`); a handful of rows. In key order: under
#: a keyed write's enable_seqscan=off the plain read could only be a disabled sequential scan, which PostgreSQL
#: planned anew at every execution (0.3 ms a batch); the primary key's index scan stays prepared
ALIASES = "SELECT alias, uid FROM instance_aliases ORDER BY alias"


def aliases(conn: Connection) -> dict[str, str]:
    """Alias uid -> the uid of the instance it names (`runlink airflow alias`)."""
    return dict(run(conn, ALIASES).all())


#: a context's new links: (run_pk, attempt_pk, ambiguous, context id), the parameters of `_MOVE`
Change = tuple[str, str | None, bool, str]
_MOVE = "UPDATE contexts SET run_pk = ?, attempt_pk = ?, ambiguous = ? WHERE id = ?"


def relink_dag(conn: Connection, dag_id: str, new_contexts: list[NormalizedContext] | None,
               uid_aliases: dict[str, str], ahead: list[list[Any]]) -> tuple[set[str], set[str],
                                                                            dict[str, linking.RunIdentity],
                                                                            list[Change]]:
    """Relink one dag_id: all of its contexts, or with `new_contexts` (just inserted) only their neighbourhood,
    unless one of them brings a new instance uid (which can change every context's instance). `ahead` holds the
    rows of its `_dag_reads`. Returns (runs to rebuild, attempts to rebuild, identity of every run relinked, the
    contexts' changed links, for `_MOVE`)."""
    uid_reads, uids, new_counts = _uid_reads(dag_id, new_contexts)
    dag_uids, context_uids, new_uid = _uids(ahead[:len(uid_reads)], uids, new_counts)
    if new_contexts is not None and not new_uid:
        rows = _neighbourhood(conn, dag_id, new_contexts, ahead[len(uid_reads):])
    else:
        rows = run(conn, f"SELECT {_CONTEXT_COLS} FROM contexts WHERE dag_id = ?", (dag_id,)).all()
    by_ctx = {_ctx_of(row): row for row in rows}
    links = linking.link_dag(dag_id, by_ctx, dag_uids | context_uids, uid_aliases)
    runs: set[str] = set()
    attempts: set[str] = set()
    identities: dict[str, linking.RunIdentity] = {}
    changes: list[Change] = []
    for ctx, row in by_ctx.items():
        link = links[ctx]
        identities[link.run.id] = link.run
        attempt_pk = link.attempt.id if link.attempt else None
        if (row.run_pk, row.attempt_pk, bool(row.ambiguous)) != (link.run.id, attempt_pk, link.ambiguous):
            changes.append((link.run.id, attempt_pk, link.ambiguous, row.id))
            runs.update(pk for pk in (row.run_pk, link.run.id) if pk)
            attempts.update(pk for pk in (row.attempt_pk, attempt_pk) if pk)
    return runs, attempts, identities, changes


def _dag_reads(dag_id: str, new_contexts: list[NormalizedContext] | None) -> list[Read]:
    """What `relink_dag` reads first: the uids, and with new contexts the first ring of their neighbourhood
    (read whether or not a new uid then asks for the whole dag: it is the same round trip)."""
    reads = _uid_reads(dag_id, new_contexts)[0]
    return reads + (_first_ring_reads(dag_id, new_contexts) if new_contexts is not None else [])


def _facts(rows: Iterable[Any]) -> dict[str, list[merge.Fact]]:
    """State event rows (`_FACTS_OF`) by context id."""
    facts: dict[str, list[merge.Fact]] = {}
    for ctx_pk, event_id, time, agent, payload in rows:
        facts.setdefault(ctx_pk, []).append(merge.Fact(time, event_id, agent, orjson.loads(payload)))
    return facts


def _fields(facts: Iterable[merge.Fact], names: tuple[str, ...]) -> dict[str, Any]:
    cleaned = []
    for fact in facts:
        values = {}
        for name in names:
            value = fact.fields.get(name)
            if value is not None and name in _INSTANTS:
                value = stored_instant(value)
            values[name] = value
        cleaned.append(merge.Fact(fact.time, fact.event_id, fact.agent, values))
    folded = merge.fold(cleaned)
    row = {name: folded.get(name) for name in names}
    for name in _JSON_FIELDS & set(names):
        if row[name] is not None:
            row[name] = orjson.dumps(row[name]).decode()
    return row


def _members_sql(column: str) -> str:
    return f"SELECT {_CONTEXT_COLS} FROM contexts WHERE {column} IN ({{}})"


def _members(rows: Iterable[Any], column: str) -> dict[str, list[Any]]:
    """Context rows by their `column` (run_pk or attempt_pk)."""
    members: dict[str, list[Any]] = {}
    for row in rows:
        members.setdefault(getattr(row, column), []).append(row)
    return members


def _attempt_rows(members: dict[str, list[Any]], facts: dict[str, list[merge.Fact]]) -> list[dict[str, Any]]:
    new_rows = []
    for pk, rows in members.items():
        tries = [r.try_number for r in rows if r.try_number is not None]
        first = rows[0]
        row = {"id": pk, "run_pk": first.run_pk, "task_id": first.task_id, "map_index": first.map_index,
               "try_number": max(tries) if tries else None, "placeholder": not tries}
        row.update(_fields((f for r in rows for f in facts.get(r.id, ())), _ATTEMPT_FIELDS))
        new_rows.append(row)
    return new_rows


def _spark_state(conn: Connection, context_ids: list[str]) -> dict[str, Any]:
    """A synthetic (Spark-only) run's state and times come from its application."""
    apps = select_in(conn, "SELECT start_time, end_time, state, exit_code FROM spark_apps WHERE context_id IN ({})",
                     context_ids)
    if not apps:
        return {}
    starts = [a.start_time for a in apps if a.start_time]
    ends = [a.end_time for a in apps if a.end_time]
    if len(ends) < len(apps):
        state = "running"
    elif any((a.state or "").lower() in ("failed", "error") or (a.exit_code or 0) != 0 for a in apps):
        state = "failed"
    else:
        state = "success"
    return {"state": state, "start_date": min(starts) if starts else None,
            "end_date": max(ends) if ends and state != "running" else None}


def _run_rows(conn: Connection, members: dict[str, list[Any]], facts: dict[str, list[merge.Fact]],
              identities: dict[str, Any]) -> list[dict[str, Any]]:
    """The rebuilt dag_runs rows; `identities` holds each run's identity (a relinked one's, else its stored row)."""
    new_rows = []
    for pk, rows in members.items():
        ident = identities.get(pk)
        if ident is None:
            continue
        row = {"id": pk, "uid": ident.uid, "dag_id": ident.dag_id, "canonical_key": ident.canonical_key,
               "run_id": ident.run_id, "logical_date": ident.logical_date, "logical_day": ident.logical_day,
               "placeholder": bool(ident.placeholder), "ambiguous": any(bool(r.ambiguous) for r in rows),
               "synthetic": any(bool(r.synthetic) for r in rows)}
        row.update(_fields((f for r in rows for f in facts.get(r.id, ())), _RUN_FIELDS))
        if row["synthetic"] and row["state"] is None:
            row.update({k: v for k, v in _spark_state(conn, [r.id for r in rows]).items() if v is not None})
        row["sort_key"] = (
            row["logical_date"] or row["start_date"]
            or (row["logical_day"] + "T00:00:00.000000Z" if row["logical_day"] else "")
        )
        new_rows.append(row)
    return new_rows


#: the state events of a kind of the contexts in runs or attempts (the contexts' rows are read alongside)
_FACTS_OF = ("SELECT state_events.context_id, state_events.event_id, state_events.time, state_events.agent, "
             "state_events.payload FROM state_events JOIN contexts ON contexts.id = state_events.context_id "
             "WHERE state_events.kind = ? AND contexts.{} IN ({{}})")


def rebuild(conn: Connection, attempt_pks: set[str], run_pks: set[str],
            identities: dict[str, linking.RunIdentity], changes: Sequence[Change] = ()) -> None:
    """Move the contexts of `changes` to their new links, then rebuild these task attempts and DAG runs from their
    contexts' state events: on PostgreSQL the moves and every read in one round trip, the deletes and inserts in
    another."""
    attempts, runs = sorted(attempt_pks), sorted(run_pks)
    with pipelined(conn):
        execute_many(conn, _MOVE, changes)
        if not attempts and not runs:
            return
        fetch = read_ahead(conn, [
            (_members_sql("attempt_pk"), attempts, ()), (_members_sql("run_pk"), runs, ()),
            (_FACTS_OF.format("attempt_pk"), attempts, ("task_attempt",)),
            (_FACTS_OF.format("run_pk"), runs, ("dag_run",)),
            (f"SELECT {_DAG_RUN_COLS} FROM dag_runs WHERE id IN ({{}})", [pk for pk in runs if pk not in identities],
             ())])
    attempt_ctx, run_ctx, attempt_facts, run_facts, stored_runs = fetch()
    attempt_rows = _attempt_rows(_members(attempt_ctx, "attempt_pk"), _facts(attempt_facts))
    run_rows = _run_rows(conn, _members(run_ctx, "run_pk"), _facts(run_facts),
                         {**{row.id: row for row in stored_runs}, **identities})
    with pipelined(conn):
        _replace(conn, task_attempts, attempts, attempt_rows)
        _replace(conn, dag_runs, runs, run_rows)


_SYNTHETIC_RUNS = ("SELECT contexts.run_pk FROM contexts JOIN spark_apps ON spark_apps.context_id = contexts.id "
                   "WHERE contexts.synthetic = {} AND spark_apps.id IN ({{}})")


#: what `read_ahead_for` gives once the batch's pipeline ended: the rows of each relinked dag_id's `_dag_reads` (in
#: `_relinked` order), the touched contexts' (run_pk, attempt_pk), the touched synthetic apps' run_pk
Ahead = Callable[[], tuple[list[list[list[Any]]], list[Any], list[Any]]]


def _relinked(dag_ids: set[str], new_contexts: dict[str, list[NormalizedContext]]) -> list[
        tuple[str, list[NormalizedContext] | None]]:
    """The dag_ids a relink covers, in order, each with its new contexts (None: the whole dag_id)."""
    return [(dag_id, None if dag_id in dag_ids else new_contexts[dag_id])
            for dag_id in sorted(dag_ids | set(new_contexts))]


def read_ahead_for(conn: Connection, dag_ids: set[str], touched_contexts: set[str], touched_apps: set[str],
                   new_contexts: dict[str, list[NormalizedContext]] | None = None) -> Ahead:
    """Everything `apply` reads before it links, queued in the caller's open `pipelined` block behind the
    batch's writes (on PostgreSQL one round trip for both): per dag_id its `_dag_reads`, then the runs and
    attempts of the touched contexts and apps. Read before the links move, those are the same runs and attempts
    as after it, but for the contexts it moves, whose old and new runs and attempts are rebuilt anyway."""
    per_dag = [_dag_reads(dag_id, seeds) for dag_id, seeds in _relinked(dag_ids, new_contexts or {})]
    synthetic = "1" if conn.dialect.name == "sqlite" else "true"
    fetch = read_ahead(conn, [read for reads in per_dag for read in reads] + [
        ("SELECT run_pk, attempt_pk FROM contexts WHERE id IN ({})", sorted(touched_contexts), ()),
        (_SYNTHETIC_RUNS.format(synthetic), sorted(touched_apps), ())])

    def split() -> tuple[list[list[list[Any]]], list[Any], list[Any]]:
        results = fetch()
        by_dag, at = [], 0
        for reads in per_dag:
            by_dag.append(results[at:at + len(reads)])
            at += len(reads)
        by_context, by_app = results[at:]
        return by_dag, by_context, by_app

    return split


def apply(conn: Connection, dag_ids: set[str], touched_contexts: set[str], touched_apps: set[str],
          new_contexts: dict[str, list[NormalizedContext]] | None = None,
          uid_aliases: dict[str, str] | None = None, ahead: Ahead | None = None) -> None:
    """Relink `dag_ids` whole and the neighbourhoods of `new_contexts` (dag_id -> contexts just inserted), then
    rebuild every run/attempt whose members or state events changed. `uid_aliases` when the caller read them in
    this transaction already; `ahead` when it queued `read_ahead_for` with the same arguments."""
    new_contexts = new_contexts or {}
    if ahead is None:
        with pipelined(conn):
            ahead = read_ahead_for(conn, dag_ids, touched_contexts, touched_apps, new_contexts)
    by_dag, by_context, by_app = ahead()
    if uid_aliases is None:
        uid_aliases = aliases(conn) if dag_ids or new_contexts else {}
    runs: set[str] = set()
    attempts: set[str] = set()
    identities: dict[str, linking.RunIdentity] = {}
    changes: list[Change] = []
    for (dag_id, seeds), dag_rows in zip(_relinked(dag_ids, new_contexts), by_dag, strict=True):
        dag_runs_changed, dag_attempts_changed, dag_identities, dag_changes = relink_dag(
            conn, dag_id, seeds, uid_aliases, dag_rows)
        runs |= dag_runs_changed
        attempts |= dag_attempts_changed
        identities.update(dag_identities)
        changes += dag_changes
    for run_pk, attempt_pk in by_context:
        if run_pk:
            runs.add(run_pk)
        if attempt_pk:
            attempts.add(attempt_pk)
    runs.update(row[0] for row in by_app if row[0])
    rebuild(conn, attempts, runs, identities, changes)


def _fold_dags(conn: Connection, alias: str, uid: str) -> None:
    """DAG definitions stored under `alias` become the instance's (the later definition wins a clash)."""
    for pk, dag_id, stamp in run(conn, "SELECT id, dag_id, stamp FROM dags WHERE uid = ?", (alias,)).all():
        target = dag_pk(uid, dag_id)
        kept = run(conn, "SELECT stamp FROM dags WHERE id = ?", (target,)).first()
        if kept is not None and (kept[0] or "") >= (stamp or ""):
            run(conn, "DELETE FROM dags WHERE id = ?", (pk,))
            continue
        if kept is not None:
            run(conn, "DELETE FROM dags WHERE id = ?", (target,))
        run(conn, "UPDATE dags SET id = ?, uid = ? WHERE id = ?", (target, uid, pk))


def relink_alias(conn: Connection, alias: str, uid: str, added: bool) -> int:
    """After `alias` was added to (or removed from) the instance `uid`: relink every dag_id with contexts or DAG
    definitions under either uid (an added alias also folds its DAG definitions into the instance's). Idempotent,
    and the result does not depend on whether events came before or after the alias. Returns the dag_ids
    relinked."""
    dag_ids = {r[0] for r in run(conn, "SELECT DISTINCT dag_id FROM contexts WHERE uid IN (?, ?)", (alias, uid))}
    dag_ids |= {r[0] for r in run(conn, "SELECT DISTINCT dag_id FROM dags WHERE uid IN (?, ?)", (alias, uid))}
    if added:
        _fold_dags(conn, alias, uid)
    apply(conn, dag_ids, set(), set())
    return len(dag_ids)
