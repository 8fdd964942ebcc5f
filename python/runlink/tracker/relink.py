"""Applies linking.py to the database: when new distinct contexts (or instances) arrive for a dag_id,
recompute that dag_id's links, move the contexts whose run/attempt changed, and rebuild the affected
DAG-run and task-attempt rows from their stored state events with merge.py (emptied placeholders go away).

Runs and attempts are *derived* rows: a pure fold of the state events of their contexts, so the same
events give the same rows in any order, and a relink needs no field-by-field moving.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

import orjson
from sqlalchemy import Connection, bindparam, delete, select, update

from runlink.context import NormalizedContext
from runlink.ids import NAMESPACE
from runlink.tracker import linking, merge
from runlink.tracker.models import contexts, dag_runs, dags, spark_apps, state_events, task_attempts

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


def _chunks(items: list, size: int = 900) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def relink_dag(conn: Connection, dag_id: str) -> tuple[set[str], set[str], dict[str, linking.RunIdentity]]:
    """Relink one dag_id. Returns (runs to rebuild, attempts to rebuild, identity of every run of the dag)."""
    rows = conn.execute(select(contexts).where(contexts.c.dag_id == dag_id)).all()
    known_uids = set(
        conn.execute(select(dags.c.uid).where(dags.c.dag_id == dag_id, dags.c.uid.is_not(None))).scalars()
    )
    by_ctx = {_ctx_of(row): row for row in rows}
    links = linking.link_dag(dag_id, by_ctx, known_uids)
    runs: set[str] = set()
    attempts: set[str] = set()
    identities: dict[str, linking.RunIdentity] = {}
    changes = []
    for ctx, row in by_ctx.items():
        link = links[ctx]
        identities[link.run.id] = link.run
        attempt_pk = link.attempt.id if link.attempt else None
        if (row.run_pk, row.attempt_pk, bool(row.ambiguous)) != (link.run.id, attempt_pk, link.ambiguous):
            changes.append({"b_id": row.id, "run_pk": link.run.id, "attempt_pk": attempt_pk,
                            "ambiguous": link.ambiguous})
            runs.update(pk for pk in (row.run_pk, link.run.id) if pk)
            attempts.update(pk for pk in (row.attempt_pk, attempt_pk) if pk)
    if changes:
        conn.execute(
            update(contexts).where(contexts.c.id == bindparam("b_id")).values(
                run_pk=bindparam("run_pk"), attempt_pk=bindparam("attempt_pk"), ambiguous=bindparam("ambiguous")
            ),
            changes,
        )
    return runs, attempts, identities


def _facts(conn: Connection, kind: str, context_ids: list[str]) -> dict[str, list[merge.Fact]]:
    facts: dict[str, list[merge.Fact]] = {}
    for chunk in _chunks(context_ids):
        result = conn.execute(
            select(state_events.c.context_id, state_events.c.event_id, state_events.c.time, state_events.c.agent,
                   state_events.c.payload).where(state_events.c.kind == kind, state_events.c.context_id.in_(chunk))
        )
        for ctx_pk, event_id, time, agent, payload in result:
            facts.setdefault(ctx_pk, []).append(merge.Fact(time, event_id, agent, orjson.loads(payload)))
    return facts


def _fields(facts: Iterable[merge.Fact], names: tuple[str, ...]) -> dict[str, Any]:
    from runlink.tracker.ingest import instant

    cleaned = []
    for fact in facts:
        values = {}
        for name in names:
            value = fact.fields.get(name)
            if value is not None and name in _INSTANTS:
                value = instant(value)
            values[name] = value
        cleaned.append(merge.Fact(fact.time, fact.event_id, fact.agent, values))
    folded = merge.fold(cleaned)
    row = {name: folded.get(name) for name in names}
    for name in _JSON_FIELDS & set(names):
        if row[name] is not None:
            row[name] = orjson.dumps(row[name]).decode()
    return row


def _members(conn: Connection, column, pks: list[str]) -> dict[str, list[Any]]:  # noqa: ANN001
    members: dict[str, list[Any]] = {}
    for chunk in _chunks(pks):
        for row in conn.execute(select(contexts).where(column.in_(chunk))):
            members.setdefault(getattr(row, column.name), []).append(row)
    return members


def rebuild_attempts(conn: Connection, attempt_pks: set[str]) -> None:
    if not attempt_pks:
        return
    pks = sorted(attempt_pks)
    members = _members(conn, contexts.c.attempt_pk, pks)
    facts = _facts(conn, "task_attempt", [r.id for rows in members.values() for r in rows])
    new_rows = []
    for pk, rows in members.items():
        tries = [r.try_number for r in rows if r.try_number is not None]
        first = rows[0]
        row = {"id": pk, "run_pk": first.run_pk, "task_id": first.task_id, "map_index": first.map_index,
               "try_number": max(tries) if tries else None, "placeholder": not tries}
        row.update(_fields((f for r in rows for f in facts.get(r.id, ())), _ATTEMPT_FIELDS))
        new_rows.append(row)
    for chunk in _chunks(pks):
        conn.execute(delete(task_attempts).where(task_attempts.c.id.in_(chunk)))
    if new_rows:
        conn.execute(task_attempts.insert(), new_rows)


def _spark_state(conn: Connection, context_ids: list[str]) -> dict[str, Any]:
    """A synthetic (Spark-only) run's state and times come from its application."""
    apps = conn.execute(
        select(spark_apps.c.start_time, spark_apps.c.end_time, spark_apps.c.state, spark_apps.c.exit_code).where(
            spark_apps.c.context_id.in_(context_ids)
        )
    ).all()
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


def rebuild_runs(conn: Connection, run_pks: set[str], identities: dict[str, linking.RunIdentity]) -> None:
    if not run_pks:
        return
    pks = sorted(run_pks)
    members = _members(conn, contexts.c.run_pk, pks)
    facts = _facts(conn, "dag_run", [r.id for rows in members.values() for r in rows])
    existing = {}
    missing_identity = [pk for pk in members if pk not in identities]
    for chunk in _chunks(missing_identity):
        for row in conn.execute(select(dag_runs).where(dag_runs.c.id.in_(chunk))):
            existing[row.id] = row
    new_rows = []
    for pk, rows in members.items():
        ident = identities.get(pk) or existing.get(pk)
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
    for chunk in _chunks(pks):
        conn.execute(delete(dag_runs).where(dag_runs.c.id.in_(chunk)))
    if new_rows:
        conn.execute(dag_runs.insert(), new_rows)


def apply(conn: Connection, dag_ids: set[str], touched_contexts: set[str], touched_apps: set[str]) -> None:
    """Relink `dag_ids`, then rebuild every run/attempt whose members or state events changed."""
    runs: set[str] = set()
    attempts: set[str] = set()
    identities: dict[str, linking.RunIdentity] = {}
    for dag_id in sorted(dag_ids):
        dag_runs_changed, dag_attempts_changed, dag_identities = relink_dag(conn, dag_id)
        runs |= dag_runs_changed
        attempts |= dag_attempts_changed
        identities.update(dag_identities)
    from runlink.tracker.ingest import select_in  # plain driver SQL: these run on every batch

    for run_pk, attempt_pk in select_in(conn, "SELECT run_pk, attempt_pk FROM contexts WHERE id IN ({})",
                                        sorted(touched_contexts)):
        if run_pk:
            runs.add(run_pk)
        if attempt_pk:
            attempts.add(attempt_pk)
    synthetic = "1" if conn.dialect.name == "sqlite" else "true"
    runs.update(
        row[0]
        for row in select_in(conn, "SELECT contexts.run_pk FROM contexts JOIN spark_apps ON spark_apps.context_id "
                             f"= contexts.id WHERE contexts.synthetic = {synthetic} AND spark_apps.id IN ({{}})",
                             sorted(touched_apps))
        if row[0]
    )
    rebuild_attempts(conn, attempts)
    rebuild_runs(conn, runs, identities)
