"""Find the task attempt or DAG run an OpenLineage parent/root facet names by the provider's own run ids.

Why: a child job (openlineage-spark, dbt, an openlineage-python script) knows its Airflow parent only as the
provider's deterministic run id. The tracker recomputes those ids (ids.py) for the runs and attempts it
already has and links the child to the one that matches, even when the provider never sent anything to runlink.

Cost: a provider id is a UUIDv7 whose timestamp is the run's logical date in ms, and the parent job name is
"<dag_id>.<task_id>": the candidates are the DAG runs of those dag_ids whose logical date falls in that
millisecond (the `(dag_id, sort_key)` index), and their attempts of that task_id; no scan of all attempts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from runlink import ids
from runlink.context import normalize
from runlink.instants import format_instant, parse_instant
from runlink.tracker.models import contexts, dag_runs, task_attempts
from runlink.tracker.openlineage import ids as provider_ids

#: a DAG run without a logical date (Airflow 3) is keyed by run_after; it starts at most this long after it
RUN_AFTER_WINDOW = timedelta(days=2)
_RUN_COLS = (dag_runs.c.id, dag_runs.c.uid, dag_runs.c.dag_id, dag_runs.c.run_id, dag_runs.c.logical_date,
             dag_runs.c.data_interval_start, dag_runs.c.data_interval_end, dag_runs.c.synthetic)


@dataclass(frozen=True)
class Link:
    """Where a parent id resolved: the raw runlink context to file children under, and its contexts.id."""

    context: dict[str, Any]
    context_id: str
    level: str  # "task" or "dag"
    target: str  # task_attempts.id or dag_runs.id


def _ms_bounds(millis: int) -> tuple[str, str]:
    start = datetime.fromtimestamp(millis / 1000, tz=timezone.utc)
    start = start.replace(microsecond=(start.microsecond // 1000) * 1000)
    return format_instant(start), format_instant(start + timedelta(milliseconds=1))


def _run_instants(run: Any, millis: int) -> list[datetime]:
    """The instants the provider may have used for this run (logical date, else run_after) in that ms."""
    found: list[datetime] = []
    if run.logical_date:
        found.append(parse_instant(run.logical_date))  # type: ignore[arg-type]
    else:
        run_id = run.run_id or ""
        found += [parse_instant(run_id.split("__", 1)[1]) if "__" in run_id else None,
                  parse_instant(run.data_interval_end), parse_instant(run.data_interval_start)]
    return [m for m in found if m is not None and int(m.timestamp() * 1000) == millis]


def _candidate_runs(conn: Connection, dag_ids: set[str], millis: int) -> list[Any]:
    low, high = _ms_bounds(millis)
    late = format_instant(datetime.fromtimestamp(millis / 1000, tz=timezone.utc) + RUN_AFTER_WINDOW)
    stmt = select(*_RUN_COLS).where(
        dag_runs.c.dag_id.in_(sorted(dag_ids)),
        or_(and_(dag_runs.c.sort_key >= low, dag_runs.c.sort_key < high),
            and_(dag_runs.c.logical_date.is_(None), or_(and_(dag_runs.c.sort_key >= low, dag_runs.c.sort_key < late),
                                                        dag_runs.c.sort_key == ""))))
    return [r for r in conn.execute(stmt).all() if not r.synthetic and _run_instants(r, millis)]


def _attempt_context(conn: Connection, attempt_pk: str, run: Any, attempt: Any) -> tuple[dict[str, Any], str]:
    """A raw context that lands on this attempt: an existing context row's own values when one reproduces its id
    (so no new context and no relink), else one built from the run and attempt."""
    rows = conn.execute(select(contexts).where(contexts.c.attempt_pk == attempt_pk, contexts.c.synthetic.is_(False))
                        .order_by(contexts.c.id)).mappings().all()
    for row in rows:
        raw = {"uid": row["uid"], "dag_id": row["dag_id"], "dag_run_id": row["dag_run_id"],
               "logical_date": row["logical_date"] or (row["logical_day"] if row["date_only"] else None),
               "task_id": row["task_id"], "try_number": row["try_number"], "map_index": row["map_index"]}
        raw = {k: str(v) for k, v in raw.items() if v is not None}
        if ids.context_id(normalize(raw)) == row["id"]:
            return raw, row["id"]
    raw = {k: str(v) for k, v in {"uid": run.uid, "dag_id": run.dag_id, "dag_run_id": run.run_id,
                                  "logical_date": run.logical_date, "task_id": attempt.task_id,
                                  "try_number": attempt.try_number, "map_index": attempt.map_index}.items()
           if v is not None}
    return raw, ids.context_id(normalize(raw))


def _run_context(run: Any) -> tuple[dict[str, Any], str]:
    raw = {k: v for k, v in {"uid": run.uid, "dag_id": run.dag_id, "dag_run_id": run.run_id,
                             "logical_date": run.logical_date}.items() if v is not None}
    return raw, ids.context_id(normalize(raw))


def find_task_attempt(conn: Connection, run_id: str, namespace: str, job_name: str) -> Link | None:
    """The one attempt whose provider task run id is `run_id` (job name "<dag_id>.<task_id>"), else None."""
    millis = provider_ids.uuid7_millis(run_id)
    splits = provider_ids.job_name_splits(job_name)
    if millis is None or not splits:
        return None
    tasks_of: dict[str, set[str]] = {}
    for dag_id, task_id in splits:
        tasks_of.setdefault(dag_id, set()).add(task_id)
    runs = {r.id: r for r in _candidate_runs(conn, set(tasks_of), millis)}
    if not runs:
        return None
    task_ids = sorted({t for d in {r.dag_id for r in runs.values()} for t in tasks_of[d]})
    attempts = conn.execute(select(task_attempts.c.id, task_attempts.c.run_pk, task_attempts.c.task_id,
                                   task_attempts.c.try_number, task_attempts.c.map_index)
                            .where(task_attempts.c.run_pk.in_(sorted(runs)), task_attempts.c.task_id.in_(task_ids),
                                   task_attempts.c.try_number.is_not(None))).all()
    matches = []
    for attempt in attempts:
        run = runs[attempt.run_pk]
        if attempt.task_id not in tasks_of[run.dag_id]:
            continue
        for moment in _run_instants(run, millis):
            if run_id in provider_ids.task_run_ids(namespace, run.dag_id, attempt.task_id, attempt.try_number,
                                                      moment, attempt.map_index):
                matches.append((attempt, run))
                break
    if len(matches) != 1:
        return None  # none, or several instances with the same dag_id and logical date: never guess
    attempt, run = matches[0]
    raw, context_id = _attempt_context(conn, attempt.id, run, attempt)
    return Link(raw, context_id, "task", attempt.id)


def find_dag_run(conn: Connection, run_id: str, namespace: str, dag_id: str) -> Link | None:
    """The one DAG run whose provider run id is `run_id` (job name = dag_id), else None."""
    millis = provider_ids.uuid7_millis(run_id)
    if millis is None or not dag_id:
        return None
    matches = [run for run in _candidate_runs(conn, {dag_id}, millis)
               if any(run_id in provider_ids.dag_run_ids(namespace, run.dag_id, moment)
                      for moment in _run_instants(run, millis))]
    if len(matches) != 1:
        return None
    raw, context_id = _run_context(matches[0])
    return Link(raw, context_id, "dag", matches[0].id)


def find_parent(conn: Connection, parent: dict[str, Any]) -> Link | None:
    """Resolve a child's parent facet (`run_id`, `namespace`, `name`, `root_run_id`, `root_namespace`,
    `root_name`): the parent task attempt, else the parent as a DAG run, else the root DAG run unless the parent
    names a task of that DAG (then the attempt is what the child waits for)."""
    run_id, namespace, name = parent.get("run_id"), parent.get("namespace") or "", parent.get("name") or ""
    if run_id and name:
        link = find_task_attempt(conn, run_id, namespace, name) or find_dag_run(conn, run_id, namespace, name)
        if link is not None:
            return link
    root_id, root_name = parent.get("root_run_id"), parent.get("root_name") or ""
    if root_id and root_name and not name.startswith(root_name + "."):
        return find_dag_run(conn, root_id, parent.get("root_namespace") or namespace, root_name)
    return None
