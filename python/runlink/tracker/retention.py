"""Retention: delete DAG runs older than a window, with every row that hangs under them.

The schema has no foreign keys (children may arrive before their parents), so what belongs to a run is found by
walking the ids: run -> task attempts -> contexts (run_pk / attempt_pk) -> Spark applications (context_id) ->
jobs, stages, executors, SQL queries (spark_app_pk) -> dataset operations (context, app or query) -> datasets
no other operation uses; metrics, spans, logs, agent health and state events by context (or, without one, by app);
OpenLineage runs shown under the contexts and their children, datasets and waiting events; alerts whose `ref` is
one of the deleted attempts, runs or dataset operations, and their notifications; and the audit copy: the
`events` rows of every deleted event and their `event_batches` bodies (dropped when nothing in them is kept,
else rewritten with the deleted events' places set to null, so `events.position` still points right).

Deletes run in short transactions of `runs_per_transaction` runs (audit batches: decoded before, pruned in
transactions of `batches_per_transaction`), each under the tracker's write lock (on PostgreSQL only the deleted
runs' DAG and Spark app keys, so other DAGs' ingest runs alongside) and followed by a pause as long as
it (three times as long), so a batch of ingest waits at most one such transaction and ingest keeps the lock at
least three quarters of the time. A
dry run walks the same ids and counts instead.
Events of Spark stages, jobs and apps keep no id in their tables; their audit copies are found by decoding the
batches that held the run's other events and the batches received while the deleted runs ran.
"""

from __future__ import annotations

import fcntl
import fnmatch
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy import Connection

from runlink import ids
from runlink.context import ContextError, normalize
from runlink.instants import format_instant, parse_instant
from runlink.tracker.db import ALERTS_KEY, Database
from runlink.tracker.ingest.audit import pack, unpack
from runlink.tracker.ingest.prepare import id_hash
from runlink.tracker.sqlutil import run, select_in

#: every table retention deletes from, in the order a report lists them
TABLES: tuple[str, ...] = (
    "dag_runs", "task_attempts", "contexts", "state_events", "spark_apps", "spark_app_contexts", "spark_jobs",
    "spark_stages", "spark_executors", "sql_queries", "streaming_queries", "sql_statements", "dataset_ops", "datasets",
    "metrics", "spans", "log_chunks", "agent_health", "openlineage_runs", "openlineage_datasets",
    "openlineage_pending", "alerts", "alert_notifications", "events", "event_batches",
)
#: PostgreSQL advisory lock key held while retention runs: two replicas never run it together
PG_RETENTION_LOCK = 0x72657465
#: OpenLineage child runs nest (a Spark job under a Spark app under a task): how deep the walk follows them
OL_DEPTH = 8
#: the audit batches of a run are looked for from a day before it started to a day after it ended (clock skew)
AUDIT_SLACK = timedelta(days=1)
RUNS_PER_TRANSACTION = 100
BATCHES_PER_TRANSACTION = 10
#: after each write transaction retention waits this many times as long as it held the lock: ingest keeps the
#: lock at least 3/4 of the time (bench_retention: PostgreSQL ingest kept 54% of its rate with 1.0)
PAUSE_RATIO = 3.0

log = logging.getLogger("runlink.tracker")


@dataclass
class RetentionReport:
    """What one pass deleted (or, for a dry run, would delete) per table, and how long it held the lock."""

    cutoff: str
    dry_run: bool
    dag_glob: str | None
    deleted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    transactions: int = 0
    seconds: float = 0.0
    longest_transaction_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"cutoff": self.cutoff, "dry_run": self.dry_run, "dag_glob": self.dag_glob, "deleted": self.deleted,
                "transactions": self.transactions, "seconds": round(self.seconds, 3),
                "longest_transaction_s": round(self.longest_transaction_s, 3)}


def cutoff_instant(keep_days: float, now: datetime | None = None) -> str:
    """Runs whose sort key (logical date, else start) is before this instant are deleted."""
    return format_instant((now or datetime.now(timezone.utc)) - timedelta(days=keep_days))


@dataclass
class _Pass:
    """One retention pass: the report, and in a dry run what earlier chunks would already have deleted (nothing
    is deleted, so later chunks must not count those rows again nor see them as still there)."""

    report: RetentionReport
    dry: bool
    contexts: set[str] = field(default_factory=set)
    apps: set[str] = field(default_factory=set)
    ops: set[str] = field(default_factory=set)
    events: set[str] = field(default_factory=set)
    datasets: set[str] = field(default_factory=set)
    batches: set[str] = field(default_factory=set)
    #: received_at window of the deleted runs' audit batches
    audit_from: str | None = None
    audit_to: str | None = None

    def count(self, table: str, n: int) -> None:
        self.report.deleted[table] += n


def _column(conn: Connection, sql: str, values: Sequence[Any]) -> list[Any]:
    return [row[0] for row in select_in(conn, sql, list(values))] if values else []


def _remove(conn: Connection, state: _Pass, table: str, where: str, values: Sequence[Any],
            before: Sequence[Any] = ()) -> None:
    """Delete (or count, in a dry run) the rows of `table` matching `where`, which has `?` marks for `before`
    then one `({})` IN list over `values`."""
    if not values:
        return
    verb = "SELECT COUNT(*) FROM" if state.dry else "DELETE FROM"
    dialect = conn.dialect.name
    template = f"{verb} {table} WHERE {where}"
    if dialect != "sqlite":
        template = template.replace("?", "%s")
    mark = "?" if dialect == "sqlite" else "%s"
    values = list(values)
    for start in range(0, len(values), 900):
        chunk = values[start:start + 900]
        result = conn.exec_driver_sql(template.format(", ".join([mark] * len(chunk))), (*before, *chunk))
        state.count(table, result.scalar_one() if state.dry else result.rowcount)


def _old_runs(conn: Connection, cutoff: str, after: tuple[str, str], limit: int) -> list[Any]:
    """The next runs (by sort key, then id) older than the cutoff: keyset pages over ix_dag_runs_sort."""
    return run(conn, "SELECT id, dag_id, sort_key, end_date FROM dag_runs WHERE sort_key <> '' AND sort_key < ? "
                     "AND (sort_key > ? OR (sort_key = ? AND id > ?)) ORDER BY sort_key, id LIMIT ?",
               (cutoff, after[0], after[0], after[1], limit)).fetchall()


def _ol_runs_under(conn: Connection, contexts: Sequence[str]) -> list[str]:
    """OpenLineage runs shown under the contexts, and their children (child runs of a deleted run's children)."""
    found = _column(conn, "SELECT run_id FROM openlineage_runs WHERE context_id IN ({})", contexts)
    frontier, seen = found, set(found)
    for _ in range(OL_DEPTH):
        children = [r for r in _column(conn, "SELECT run_id FROM openlineage_runs WHERE parent_run_id IN ({})",
                                       frontier) if r not in seen]
        if not children:
            break
        seen.update(children)
        frontier = children
    return sorted(seen)


def _delete_runs(conn: Connection, state: _Pass, run_pks: list[str]) -> list[str]:
    """Everything under these runs, children first; returns the batch ids that held their audit copies."""
    attempts = _column(conn, "SELECT id FROM task_attempts WHERE run_pk IN ({})", run_pks)
    contexts = sorted(set(_column(conn, "SELECT id FROM contexts WHERE run_pk IN ({})", run_pks))
                      | set(_column(conn, "SELECT id FROM contexts WHERE attempt_pk IN ({})", attempts)))
    apps, shared = _apps_under(conn, state, contexts)
    queries = _column(conn, "SELECT id FROM sql_queries WHERE spark_app_pk IN ({})", apps)
    doomed_contexts = set(contexts)
    queries += [row[0] for row in select_in(conn, "SELECT id, context_id FROM sql_queries WHERE spark_app_pk IN ({})",
                                            shared) if row[1] in doomed_contexts]
    op_rows = {row[0]: row[1] for sql, values in (
        ("SELECT id, dataset_pk FROM dataset_ops WHERE context_id IN ({})", contexts),
        ("SELECT id, dataset_pk FROM dataset_ops WHERE sql_query_pk IN ({})", queries),
        ("SELECT id, dataset_pk FROM dataset_ops WHERE context_id IS NULL AND spark_app_pk IN ({})", apps),
    ) for row in (select_in(conn, sql, values) if values else ())}
    ops = sorted(set(op_rows) - state.ops)
    ol_runs = _ol_runs_under(conn, contexts)
    event_ids = set(_column(conn, "SELECT event_id FROM state_events WHERE context_id IN ({})", contexts))
    event_ids.update(_column(conn, "SELECT event_id FROM spans WHERE context_id IN ({})", contexts))
    event_ids.update(_column(conn, "SELECT id FROM sql_statements WHERE context_id IN ({})", contexts))
    for table in ("metrics", "log_chunks"):
        event_ids.update(_column(conn, f"SELECT id FROM {table} WHERE context_id IN ({{}})", contexts))
        event_ids.update(_column(conn, f"SELECT id FROM {table} WHERE context_id IS NULL AND spark_app_pk IN ({{}})",
                                 apps))
    health = set(_column(conn, "SELECT id FROM agent_health WHERE context_id IN ({})", contexts)) | set(
        _column(conn, "SELECT id FROM agent_health WHERE spark_app_pk IN ({})", apps))
    event_ids.update(queries, ops, health)
    refs = [*attempts, *run_pks, *ops]
    alerts = _column(conn, "SELECT id FROM alerts WHERE ref IN ({})", refs)

    _remove(conn, state, "alert_notifications", "alert_id IN ({})", alerts)
    _remove(conn, state, "alerts", "id IN ({})", alerts)
    _remove(conn, state, "openlineage_datasets", "run_id IN ({})", ol_runs)
    _remove(conn, state, "openlineage_pending", "waiting_on IN ({})", ol_runs)
    _remove(conn, state, "openlineage_runs", "run_id IN ({})", ol_runs)
    _remove(conn, state, "dataset_ops", "id IN ({})", ops)
    for table in ("metrics", "log_chunks"):
        _remove(conn, state, table, "context_id IN ({})", contexts)
        _remove(conn, state, table, "context_id IS NULL AND spark_app_pk IN ({})", apps)
    _remove(conn, state, "spans", "context_id IN ({})", contexts)
    _remove(conn, state, "sql_statements", "context_id IN ({})", contexts)  # an Airflow SQL hook's statements
    _remove(conn, state, "agent_health", "id IN ({})", sorted(health))
    _remove(conn, state, "sql_queries", "id IN ({})", queries)
    for table in ("spark_stages", "spark_jobs", "spark_executors", "streaming_queries"):
        _remove(conn, state, table, "spark_app_pk IN ({})", apps)
    for app in shared:  # a shared application that stays loses only the deleted tasks' jobs and stages
        for table in ("spark_stages", "spark_jobs"):
            _remove(conn, state, table, "spark_app_pk = ? AND context_id IN ({})", contexts, before=(app,))
    _remove(conn, state, "spark_app_contexts", "spark_app_pk IN ({})", apps)
    _remove(conn, state, "spark_app_contexts", "context_id IN ({})", contexts)
    _remove(conn, state, "spark_apps", "id IN ({})", apps)
    if not state.dry:
        _rehome_shared_apps(conn, shared, contexts)
    _remove(conn, state, "state_events", "context_id IN ({})", contexts)
    _remove(conn, state, "contexts", "id IN ({})", contexts)
    _remove(conn, state, "task_attempts", "id IN ({})", attempts)
    _remove(conn, state, "dag_runs", "id IN ({})", run_pks)
    if state.dry:
        state.contexts.update(contexts)
        state.apps.update(apps)
        state.ops.update(ops)
    _drop_unused_datasets(conn, state, sorted(set(op_rows[o] for o in ops)))
    return _drop_events(conn, state, sorted(event_ids))


def _apps_under(conn: Connection, state: _Pass, contexts: list[str]) -> tuple[list[str], list[str]]:
    """(the Spark applications to delete, the shared ones that stay): an application whose context is deleted
    goes unless a kept task's work ran on it (spark_app_contexts, migration 0011); an application any deleted
    context used stays when others use it, losing only that context's work."""
    doomed = set(contexts) | state.contexts
    owned = _column(conn, "SELECT id FROM spark_apps WHERE context_id IN ({})", contexts)
    used = _column(conn, "SELECT spark_app_pk FROM spark_app_contexts WHERE context_id IN ({})", contexts)
    candidates = sorted(set(owned) | set(used))
    users = select_in(conn, "SELECT spark_app_pk, context_id FROM spark_app_contexts WHERE spark_app_pk IN ({})",
                      candidates)
    kept = {app for app, context in users if context not in doomed}
    owned_set = set(owned)
    return ([a for a in candidates if a in owned_set and a not in kept],
            sorted(a for a in candidates if a in kept or a not in owned_set))


def _rehome_shared_apps(conn: Connection, shared: list[str], contexts: list[str]) -> None:
    """A shared application whose owning context was deleted is shown under one of the tasks still using it."""
    if not shared or not contexts:
        return
    for app, owner in select_in(conn, "SELECT id, context_id FROM spark_apps WHERE id IN ({})", shared):
        if owner in set(contexts):
            heir = run(conn, "SELECT MIN(context_id) FROM spark_app_contexts WHERE spark_app_pk = ?",
                       (app,)).scalar_one()
            run(conn, "UPDATE spark_apps SET context_id = ? WHERE id = ?", (heir, app))


def _drop_unused_datasets(conn: Connection, state: _Pass, dataset_pks: list[str]) -> None:
    """Datasets none of whose operations are left (a dataset another run read or wrote stays)."""
    if not dataset_pks:
        return
    used: set[str] = set()
    for dataset_pk, op_id in select_in(conn, "SELECT dataset_pk, id FROM dataset_ops WHERE dataset_pk IN ({})",
                                       dataset_pks):
        if op_id not in state.ops or not state.dry:
            used.add(dataset_pk)
    unused = [pk for pk in dataset_pks if pk not in used and pk not in state.datasets]
    _remove(conn, state, "datasets", "id IN ({})", unused)
    if state.dry:
        state.datasets.update(unused)


def _drop_events(conn: Connection, state: _Pass, event_ids: list[str]) -> list[str]:
    """The `events` rows of these ids (looked up by id hash, compared in full); returns their batch ids."""
    wanted = set(event_ids) - state.events
    found = [(row[0], row[1], row[2]) for row in select_in(
        conn, "SELECT id, id_hash, batch_id FROM events WHERE id_hash IN ({})",
        sorted({id_hash(e) for e in wanted})) if row[0] in wanted]
    _remove_events(conn, state, [(event_id, hash_) for event_id, hash_, _ in found])
    return sorted({batch for _, _, batch in found if batch is not None})


def _remove_events(conn: Connection, state: _Pass, rows: list[tuple[str, int]]) -> None:
    if not rows:
        return
    state.count("events", len(rows))
    if state.dry:
        state.events.update(event_id for event_id, _ in rows)
        return
    run(conn, "DELETE FROM events WHERE id_hash = ? AND id = ?", [(h, e) for e, h in rows])


def _context_pk(raw: dict[str, Any] | None) -> str | None:
    if not raw:
        return None
    try:
        ctx = normalize({k: v for k, v in raw.items() if v is not None})
    except (ContextError, OverflowError, TypeError, ValueError):
        return None
    return ids.context_id(ctx) if ctx.dag_id is not None else None


def _event_refs(event: dict[str, Any]) -> tuple[str | None, str | None]:
    """(context id, Spark app pk) an audited event's rows hang on, as ingest computed them: on a shared
    application, work done for a task (`work_context`) is that task's alone."""
    spark = event.get("spark")
    work_pk = _context_pk(event.get("work_context"))
    if work_pk is not None:
        return work_pk, None
    app_pk = ids.spark_app_id(spark["app_id"], spark.get("attempt_id")) if spark and spark.get("app_id") else None
    return _context_pk(event.get("context")), app_pk


@dataclass
class _Batch:
    """An audit batch decoded outside the write lock: its events and what each hangs on."""

    id: str
    events: list[dict[str, Any] | None]
    refs: list[tuple[str | None, str | None]]


def _decode_batches(db: Database, batch_ids: Sequence[str]) -> list[_Batch]:
    """Read and decode batches in a read transaction: only retention rewrites a body, one pass at a time."""
    with db.read() as conn:
        rows = select_in(conn, "SELECT id, body FROM event_batches WHERE id IN ({})", list(batch_ids))
    out = []
    for batch_id, body in rows:
        events = unpack(bytes(body))
        out.append(_Batch(batch_id, events, [(None, None) if e is None else _event_refs(e) for e in events]))
    return out


def _prune_batches(conn: Connection, state: _Pass, batches: Sequence[_Batch]) -> None:
    """Drop from audit batches the events whose context and Spark app are both gone (deleted here, or never
    kept); a batch left with no stored event goes, one with some is rewritten with nulls in the gaps."""
    contexts = sorted({c for b in batches for c, _ in b.refs if c})
    apps = sorted({a for b in batches for _, a in b.refs if a})
    live_contexts = set(_column(conn, "SELECT id FROM contexts WHERE id IN ({})", contexts)) - state.contexts
    live_apps = set(_column(conn, "SELECT id FROM spark_apps WHERE id IN ({})", apps)) - state.apps
    for batch in batches:
        if batch.id in state.batches:
            continue
        # gone: hangs on something (a DAG definition, a context-less health report hang on nothing) and all of
        # it is deleted
        gone = [(c is not None or a is not None) and c not in live_contexts and a not in live_apps
                for c, a in batch.refs]
        hashes = sorted({id_hash(e["id"]) for e in batch.events if e is not None})
        stored = [(row[0], row[1], row[2]) for row in select_in(
            conn, "SELECT id, id_hash, position FROM events WHERE batch_id = ? AND id_hash IN ({})", hashes,
            before=(batch.id,)) if row[0] not in state.events]
        doomed = [(e, h) for e, h, position in stored
                  if position is not None and position < len(batch.events) and gone[position]]
        _remove_events(conn, state, doomed)
        if len(doomed) == len(stored):
            state.count("event_batches", 1)
            if state.dry:
                state.batches.add(batch.id)
            else:
                run(conn, "DELETE FROM event_batches WHERE id = ?", (batch.id,))
            continue
        kept = [None if dead else event for event, dead in zip(batch.events, gone, strict=True)]
        if kept != batch.events and not state.dry:
            run(conn, "UPDATE event_batches SET body = ? WHERE id = ?", (pack(kept), batch.id))


def _audit_batches_between(db: Database, start: str, end: str, page: int = 2000) -> Iterator[list[str]]:
    """Ids of the batches received in [start, end], in pages (event_batches has no index on received_at: the
    key is scanned, reading only each row's head)."""
    after = ""
    while True:
        with db.read() as conn:
            rows = run(conn, "SELECT id, received_at FROM event_batches WHERE id > ? ORDER BY id LIMIT ?",
                       (after, page)).fetchall()
        if not rows:
            return
        after = rows[-1][0]
        chosen = [row[0] for row in rows if start <= row[1] <= end]
        if chosen:
            yield chosen


def _matches(dag_id: str, dag_glob: str | None) -> bool:
    return dag_glob is None or fnmatch.fnmatchcase(dag_id, dag_glob)


@contextmanager
def _transaction(db: Database, state: _Pass, stop: threading.Event,
                 keys: Sequence[str] | None = None) -> Iterator[Connection]:
    """A write transaction (a read one in a dry run), timed: the longest is how long ingest could have waited.
    After it, a pause of PAUSE_RATIO times as long: ingest gets the write lock most of the time."""
    started = time.monotonic()
    with (db.read() if state.dry else db.write(keys)) as conn:
        yield conn
    elapsed = time.monotonic() - started
    state.report.transactions += 1
    state.report.longest_transaction_s = max(state.report.longest_transaction_s, elapsed)
    if not state.dry:
        stop.wait(elapsed * PAUSE_RATIO)


def _widen_audit_window(state: _Pass, runs: Sequence[Any]) -> None:
    for _, _, sort_key, end_date in runs:
        start = parse_instant(sort_key)
        end = parse_instant(end_date) or start
        if start is None or end is None:
            continue
        low, high = format_instant(start - AUDIT_SLACK), format_instant(max(start, end) + AUDIT_SLACK)
        state.audit_from = low if state.audit_from is None else min(state.audit_from, low)
        state.audit_to = high if state.audit_to is None else max(state.audit_to, high)


def apply_retention(db: Database, keep_days: float, dag_glob: str | None = None, *, dry_run: bool = False,
                    runs_per_transaction: int = RUNS_PER_TRANSACTION,
                    batches_per_transaction: int = BATCHES_PER_TRANSACTION,
                    now: datetime | None = None, stop: threading.Event | None = None,
                    audit_all: bool = False) -> RetentionReport:
    """Delete (or count, with `dry_run`) the runs older than `keep_days` whose dag_id matches `dag_glob`, with
    everything under them, a few hundred runs per short write transaction. `stop` ends the pass between two
    transactions (a stopping server); the next pass deletes what is left. The audit copies of the deleted runs'
    Spark events are looked for in the batches received while they ran; `audit_all` looks in every batch (for
    events that arrived long after their run, e.g. replayed from an agent's spool)."""
    report = RetentionReport(cutoff=cutoff_instant(keep_days, now), dry_run=dry_run, dag_glob=dag_glob)
    state = _Pass(report, dry_run)
    stop = stop or threading.Event()
    started = time.monotonic()
    after = ("", "")
    while not stop.is_set():
        with db.read() as conn:
            page = _old_runs(conn, report.cutoff, after, runs_per_transaction * 4)
        if not page:
            break
        after = (page[-1][2], page[-1][0])
        chosen = [r for r in page if _matches(r[1], dag_glob)]
        for chunk in _chunks(chosen, runs_per_transaction, stop):
            _widen_audit_window(state, chunk)
            with _transaction(db, state, stop, _lock_keys(db, chunk)) as conn:
                touched = _delete_runs(conn, state, [r[0] for r in chunk])
            _prune_audit(db, state, touched, batches_per_transaction, stop)
    if audit_all:
        state.audit_from, state.audit_to = "", "9999"
    if state.audit_from is not None and state.audit_to is not None:
        for page_ids in _audit_batches_between(db, state.audit_from, state.audit_to):
            _prune_audit(db, state, page_ids, batches_per_transaction, stop)
    report.seconds = time.monotonic() - started
    return report


def _prune_audit(db: Database, state: _Pass, batch_ids: Sequence[str], size: int, stop: threading.Event) -> None:
    """The audit batches, `size` per write transaction, each decoded before its transaction begins."""
    for chunk in _chunks(sorted(set(batch_ids) - state.batches), size, stop):
        decoded = _decode_batches(db, chunk)
        with _transaction(db, state, stop, ()) as conn:  # row-level: no relink, no DAG's rows
            _prune_batches(conn, state, decoded)


def _lock_keys(db: Database, runs: Sequence[Any]) -> list[str]:
    """The PostgreSQL write locks of deleting these runs, as ingest names them (ingest/store.lock_keys): their
    DAGs' and their Spark applications', and the alert worker's (it deletes their alerts). Ingest of other DAGs
    goes on meanwhile; a batch for one of these DAGs waits for the transaction."""
    run_pks = [r[0] for r in runs]
    with db.read() as conn:
        apps = _column(conn, "SELECT spark_apps.id FROM spark_apps JOIN contexts ON contexts.id = "
                             "spark_apps.context_id WHERE contexts.run_pk IN ({})", run_pks)
    return sorted({"dag:" + r[1] for r in runs} | {"app:" + pk for pk in apps} | {ALERTS_KEY})


def _chunks(items: Sequence[Any], size: int, stop: threading.Event) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        if stop.is_set():
            return
        yield items[start:start + size]


def reclaim_space(db: Database, *, full: bool = False) -> str:
    """Give deleted pages back as the backend allows. SQLite: an incremental vacuum when the file was made with
    auto_vacuum=INCREMENTAL, a full VACUUM (which blocks writers while it rewrites the file) only when `full`;
    otherwise freed pages are reused by later writes. PostgreSQL: autovacuum reclaims dead rows by itself;
    `full` runs VACUUM (ANALYZE) on the tables retention deletes from (outside a transaction, never FULL)."""
    if db.sqlite:
        with db.write() as conn:
            mode = conn.exec_driver_sql("PRAGMA auto_vacuum").scalar_one()
            free = conn.exec_driver_sql("PRAGMA freelist_count").scalar_one()
            if mode == 2:
                conn.exec_driver_sql("PRAGMA incremental_vacuum").fetchall()
                return f"sqlite: incremental vacuum released {free} free pages"
        if not full:
            return f"sqlite: {free} free pages will be reused by new rows (VACUUM returns them to the disk)"
        with db.engine.connect() as conn:
            conn.exec_driver_sql("VACUUM")
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        return f"sqlite: VACUUM rewrote the file ({free} free pages released)"
    if not full:
        return "postgresql: autovacuum reclaims the deleted rows (VACUUM (ANALYZE) runs when asked)"
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        for table in TABLES:
            conn.exec_driver_sql(f"VACUUM (ANALYZE) {table}")
    return f"postgresql: VACUUM (ANALYZE) on {len(TABLES)} tables"


@contextmanager
def retention_lease(db: Database, *, wait: bool = False) -> Iterator[bool]:
    """Whether this process may run retention now: one at a time across the worker processes and replicas of a
    tracker (a PostgreSQL session advisory lock; on SQLite an exclusive lock file beside the database). Yields
    False when another holds it, or with `wait` waits for it to finish (a person running the CLI)."""
    if not db.sqlite:
        with db.session_lease(PG_RETENTION_LOCK, wait=wait) as conn:
            yield conn is not None
        return
    path = db.url[len("sqlite:///"):] if db.url.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        yield True
        return
    fd = os.open(Path(path + ".retention.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class RetentionSchedule:
    """The server's retention: a daemon thread that runs a pass every `interval_s` (the first one at start),
    when it holds the lease; a pass that finds another replica's lease skips that round."""

    def __init__(self, db: Database, keep_days: float, dag_glob: str | None, interval_s: float) -> None:
        self.db = db
        self.keep_days = keep_days
        self.dag_glob = dag_glob
        self.interval_s = interval_s
        self.last_report: RetentionReport | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="runlink-retention", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Ends after the transaction in progress (each is short); waits up to `timeout_s`."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def run_once(self) -> RetentionReport | None:
        with retention_lease(self.db) as held:
            if not held:
                return None
            report = apply_retention(self.db, self.keep_days, self.dag_glob, stop=self._stop)
        self.last_report = report
        deleted = {table: n for table, n in report.deleted.items() if n}
        log.info("runlink retention: runs before %s deleted in %.1fs (%d transactions, longest %.3fs): %s",
                 report.cutoff, report.seconds, report.transactions, report.longest_transaction_s, deleted or "none")
        return report

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # a failed pass (database away) is retried next round, never kills the thread
                log.exception("runlink retention: pass failed")
            self._stop.wait(self.interval_s)
