"""A task's own history: which attempts ran it (same instance, DAG, task and map index), what Spark work each did
(stages with their totals, jobs, lost executors) and, over its runs, the series the task page charts and the API
answers (duration, every user metric, Spark totals). diagnosis.py compares one attempt with this history.

Every read is bounded: a number of attempts (at most MAX_RUNS), then their Spark applications by key."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Connection, and_, func, inspect, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement

from runlink.instants import seconds_between
from runlink.tracker.models import (
    contexts,
    dag_runs,
    metrics,
    spark_app_contexts,
    spark_apps,
    spark_executors,
    spark_jobs,
    spark_stages,
    task_attempts,
)

#: the most runs a trend or a comparison reads
MAX_RUNS = 200
#: Spark totals charted per run: name -> the stage metrics summed into it
SPARK_TOTALS: dict[str, tuple[str, ...]] = {
    "executor_run_time_ms": ("executor_run_time_ms",),
    "input_bytes": ("input_bytes",),
    "shuffle_read_bytes": ("shuffle_read_bytes",),
    "shuffle_write_bytes": ("shuffle_write_bytes",),
    "spill_bytes": ("memory_spilled_bytes", "disk_spilled_bytes"),
    "output_records": ("output_records",),
}
#: the stage metrics a comparison reads
STAGE_FIGURES = ("executor_run_time_ms", "jvm_gc_time_ms", "input_bytes", "input_records", "shuffle_read_bytes",
                 "shuffle_read_records", "shuffle_write_bytes", "memory_spilled_bytes", "disk_spilled_bytes",
                 "output_records")
_ATTEMPT_COLUMNS = (task_attempts.c.id, task_attempts.c.run_pk, task_attempts.c.task_id, task_attempts.c.map_index,
                    task_attempts.c.try_number, task_attempts.c.state, task_attempts.c.start_date,
                    task_attempts.c.end_date, task_attempts.c.duration_s, task_attempts.c.error,
                    dag_runs.c.uid, dag_runs.c.dag_id, dag_runs.c.run_id, dag_runs.c.logical_date,
                    dag_runs.c.sort_key)


def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:  # noqa: ANN001
    result = conn.execute(stmt)
    keys = [str(k) for k in result.keys()]
    return [dict(zip(keys, row, strict=False)) for row in result.fetchall()]


def _chunks(items: Sequence[str], size: int = 900) -> Iterable[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def duration_of(attempt: dict[str, Any]) -> float | None:
    """The attempt's duration: Airflow's when it has one, else end - start."""
    if attempt.get("duration_s") is not None:
        return float(attempt["duration_s"])
    return seconds_between(attempt.get("start_date"), attempt.get("end_date"))


def attempt_row(conn: Connection, attempt_pk: str) -> dict[str, Any] | None:
    """One attempt with its run's instance, DAG id, run id and sort key."""
    rows = _rows(conn, select(*_ATTEMPT_COLUMNS).join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
                 .where(task_attempts.c.id == attempt_pk))
    return rows[0] if rows else None


def _same_task(attempt: dict[str, Any]):  # noqa: ANN202
    return select(*_ATTEMPT_COLUMNS).join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk).where(
        dag_runs.c.dag_id == attempt["dag_id"], task_attempts.c.task_id == attempt["task_id"],
        task_attempts.c.map_index == attempt["map_index"],
        dag_runs.c.uid == attempt["uid"] if attempt.get("uid") is not None else dag_runs.c.uid.is_(None))


def earlier_successes(conn: Connection, attempt: dict[str, Any], n: int) -> list[dict[str, Any]]:
    """The last `n` successful attempts of the same task before this one (earlier runs: logical date, else start),
    newest first."""
    stmt = _same_task(attempt).where(task_attempts.c.state == "success", task_attempts.c.id != attempt["id"],
                                     or_(dag_runs.c.sort_key < attempt["sort_key"],
                                         and_(dag_runs.c.sort_key == attempt["sort_key"],
                                              task_attempts.c.start_date < (attempt.get("start_date") or ""))))
    stmt = stmt.order_by(dag_runs.c.sort_key.desc(), task_attempts.c.try_number.desc()).limit(min(n, MAX_RUNS))
    return _rows(conn, stmt)


def run_attempts(conn: Connection, run_pk: str) -> list[dict[str, Any]]:
    """The attempts of one DAG run, in task order."""
    return _rows(conn, select(*_ATTEMPT_COLUMNS).join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
                 .where(task_attempts.c.run_pk == run_pk)
                 .order_by(task_attempts.c.task_id, task_attempts.c.map_index, task_attempts.c.try_number))


def recent_attempts(conn: Connection, attempt: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    """The task's attempts up to this one's run (every try), oldest first."""
    stmt = _same_task(attempt).where(dag_runs.c.sort_key <= attempt["sort_key"])
    stmt = stmt.order_by(dag_runs.c.sort_key.desc(), task_attempts.c.try_number.desc()).limit(min(limit, MAX_RUNS))
    rows = _rows(conn, stmt)
    rows.reverse()
    return rows


# ---------------------------------------------------------------- Spark work per attempt

@dataclass
class SparkWork:
    """What Spark did for one attempt: its stages (retries merged), the first job's submission, lost executors."""

    stages: list[dict[str, Any]] = field(default_factory=list)
    first_job_at: str | None = None
    executors_lost: int = 0
    slots: dict[str, int] = field(default_factory=dict)  # app pk -> cores of its executors
    lost_reasons: list[str] = field(default_factory=list)
    failed_jobs: list[dict[str, Any]] = field(default_factory=list)


_OPTIONAL_STAGE_COLUMNS: dict[str, list[str]] = {}


def _optional_stage_columns(conn: Connection) -> list[str]:
    """The call site and task distribution columns, when the database has them (migration 0015): read once per
    database, as the schema does not change while the tracker runs."""
    key = conn.engine.url.render_as_string(hide_password=True)
    if key not in _OPTIONAL_STAGE_COLUMNS:
        present = {c["name"] for c in inspect(conn).get_columns("spark_stages")}
        _OPTIONAL_STAGE_COLUMNS[key] = [name for name in _OPTIONAL if name in present and name in spark_stages.c]
    return _OPTIONAL_STAGE_COLUMNS[key]


def _apps_of(conn: Connection, attempt_pks: Sequence[str]) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(context id -> attempt, app pk -> {attempt, owned, start_time, end_time}): the Spark applications of these
    attempts, their own and the shared ones they used."""
    ctx_of: dict[str, str] = {}
    apps: dict[str, dict[str, Any]] = {}
    for chunk in _chunks(list(attempt_pks)):
        ctx_of.update(conn.execute(select(contexts.c.id, contexts.c.attempt_pk)
                                   .where(contexts.c.attempt_pk.in_(chunk))).all())
    for chunk in _chunks(list(ctx_of)):
        for pk, ctx, start, end in conn.execute(select(spark_apps.c.id, spark_apps.c.context_id,
                                                       spark_apps.c.start_time, spark_apps.c.end_time)
                                                .where(spark_apps.c.context_id.in_(chunk))):
            apps[pk] = {"attempt": ctx_of[ctx], "owned": True, "start_time": start, "end_time": end}
        for pk, ctx in conn.execute(select(spark_app_contexts.c.spark_app_pk, spark_app_contexts.c.context_id)
                                    .where(spark_app_contexts.c.context_id.in_(chunk))):
            if pk not in apps:
                apps[pk] = {"attempt": ctx_of[ctx], "owned": False, "start_time": None, "end_time": None}
    return ctx_of, apps


def _counted(app: dict[str, Any], context_id: str | None, ctx_of: dict[str, str]) -> bool:
    """Whether a stage or job of this application is the attempt's work: its own task's, or (on an application the
    attempt owns) no task's."""
    return (context_id is not None and ctx_of.get(context_id) == app["attempt"]) or (
        app["owned"] and context_id is None)


def spark_totals_by_attempt(conn: Connection, attempt_pks: Sequence[str]) -> dict[str, dict[str, int]]:
    """Each attempt's Spark totals (SPARK_TOTALS), summed by the database per application and task context."""
    ctx_of, apps = _apps_of(conn, attempt_pks)
    out: dict[str, dict[str, int]] = {}
    sums = [func.coalesce(func.sum(spark_stages.c[part]), 0) for parts in SPARK_TOTALS.values() for part in parts]
    for chunk in _chunks(list(apps)):
        for row in conn.execute(select(spark_stages.c.spark_app_pk, spark_stages.c.context_id, *sums)
                                .where(spark_stages.c.spark_app_pk.in_(chunk))
                                .group_by(spark_stages.c.spark_app_pk, spark_stages.c.context_id)):
            app = apps[row[0]]
            if not _counted(app, row[1], ctx_of):
                continue
            totals = out.setdefault(app["attempt"], dict.fromkeys(SPARK_TOTALS, 0))
            values = iter(row[2:])
            for name, parts in SPARK_TOTALS.items():
                totals[name] += sum(int(next(values)) for _ in parts)
    return out


def spark_work(conn: Connection, attempt_pks: Sequence[str],
               distributions: Collection[str] | None = None) -> dict[str, SparkWork]:
    """Each attempt's Spark work: the applications it owns (less other tasks' work there) and its share of the
    shared ones it used; stages in application then stage order. `distributions`: the attempts whose stages' task
    distributions are read (default all; the JSON is most of a stage row: load_distributions reads more later)."""
    work = {pk: SparkWork() for pk in attempt_pks}
    ctx_of, apps = _apps_of(conn, attempt_pks)
    if not apps:
        return work
    app_pks = sorted(apps, key=lambda pk: (apps[pk]["start_time"] or "", pk))
    optional = _optional_stage_columns(conn)
    merged: dict[tuple[str, int], dict[str, Any]] = {}
    for wanted, chunk in _app_chunks(app_pks, apps, distributions):
        names = optional if wanted else [c for c in optional if c != "distribution"]
        columns = [*(spark_stages.c[c] for c in _STAGE_BASE[:6]), _wall_seconds(conn.dialect.name),
                   *(spark_stages.c[c] for c in _STAGE_BASE[7:]),
                   *(func.coalesce(spark_stages.c[c], 0) for c in STAGE_FIGURES),
                   *(spark_stages.c[c] if c in names else literal_column("NULL") for c in _OPTIONAL)]
        rows = conn.execute(select(*columns).where(spark_stages.c.spark_app_pk.in_(chunk))
                            .order_by(spark_stages.c.spark_app_pk, spark_stages.c.stage_id,
                                      spark_stages.c.attempt_id)).fetchall()
        for row in rows:  # driver tuples: a comparison reads thousands of stages
            if _counted(apps[row[0]], row[8], ctx_of):
                _merge_stage(merged, row)
    order = {pk: i for i, pk in enumerate(app_pks)}
    for (app_pk, _), stage in sorted(merged.items(), key=lambda item: (order[item[0][0]], item[0][1])):
        work[apps[app_pk]["attempt"]].stages.append(stage)
    _jobs(conn, apps, ctx_of, work)
    _executors(conn, apps, work)
    return work


def _app_chunks(app_pks: list[str], apps: dict[str, dict[str, Any]],
                distributions: Collection[str] | None) -> Iterable[tuple[bool, Sequence[str]]]:
    """The applications in chunks, those whose distributions are read apart."""
    wanted = [pk for pk in app_pks if distributions is None or apps[pk]["attempt"] in distributions]
    others = [pk for pk in app_pks if pk not in set(wanted)]
    for flag, pks in ((True, wanted), (False, others)):
        for chunk in _chunks(pks):
            yield flag, chunk


def load_distributions(conn: Connection, stages: Sequence[dict[str, Any]]) -> None:
    """Read the task distributions of these merged stages (left out by spark_work) into them."""
    if "distribution" not in _optional_stage_columns(conn) or not stages:
        return
    by_key = {(s["app_pk"], s["stage_id"]): s for s in stages}
    for chunk in _chunks(sorted({s["app_pk"] for s in stages})):
        ids = sorted({s["stage_id"] for s in stages if s["app_pk"] in chunk})
        for app_pk, stage_id, text in conn.execute(
                select(spark_stages.c.spark_app_pk, spark_stages.c.stage_id, spark_stages.c.distribution)
                .where(spark_stages.c.spark_app_pk.in_(chunk), spark_stages.c.stage_id.in_(ids[:900]),
                       spark_stages.c.distribution.is_not(None))
                .order_by(spark_stages.c.spark_app_pk, spark_stages.c.stage_id, spark_stages.c.attempt_id)):
            stage = by_key.get((app_pk, stage_id))
            if stage is not None:
                stage["distribution"] = text


_STAGE_BASE = ("spark_app_pk", "stage_id", "name", "status", "num_tasks", "failed_tasks", "wall_s",
               "failure_reason", "context_id")
_FIGURES_AT = len(_STAGE_BASE)
_OPTIONAL_AT = _FIGURES_AT + len(STAGE_FIGURES)
_OPTIONAL = ("callsite", "distribution", "task_skew")


def _wall_seconds(dialect: str) -> ColumnElement:
    """A stage's wall time in seconds, computed by the database (parsing thousands of instants in Python was a
    third of a comparison's time)."""
    if dialect == "sqlite":
        return literal_column("(julianday(completion_time) - julianday(submission_time)) * 86400.0")
    return literal_column("EXTRACT(EPOCH FROM (CAST(completion_time AS timestamptz) "
                          "- CAST(submission_time AS timestamptz)))")


def _merge_stage(merged: dict[tuple[str, int], dict[str, Any]], row: Sequence[Any]) -> None:
    """Attempts of one stage become one: figures and wall times summed, failed attempts counted, the last attempt's
    status, the latest distribution (kept as its JSON text until distribution_of reads it)."""
    app_pk, stage_id, name, status, num_tasks, failed_tasks, wall, reason = row[:8]
    callsite, distribution, task_skew = row[_OPTIONAL_AT:]
    figures = row[_FIGURES_AT:_OPTIONAL_AT]
    wall = max(float(wall), 0.0) if wall is not None else 0.0
    stage = merged.get((app_pk, stage_id))
    if stage is None:
        merged[(app_pk, stage_id)] = {
            "app_pk": app_pk, "stage_id": stage_id, "name": name, "callsite": callsite,
            "status": status, "num_tasks": num_tasks or 0, "failed_tasks": failed_tasks or 0,
            "failed_attempts": int(status == "failed"), "failure_reason": reason, "wall_s": wall,
            "figures": dict(zip(STAGE_FIGURES, figures, strict=True)), "distribution": distribution,
            "task_skew": task_skew,
        }
        return
    stage["status"] = status
    stage["num_tasks"] = max(stage["num_tasks"], num_tasks or 0)
    stage["failed_tasks"] += failed_tasks or 0
    stage["failed_attempts"] += int(status == "failed")
    stage["failure_reason"] = stage["failure_reason"] or reason
    stage["wall_s"] += wall
    stage["callsite"] = stage["callsite"] or callsite
    stage["distribution"] = distribution or stage["distribution"]
    if task_skew is not None:
        stage["task_skew"] = task_skew
    totals = stage["figures"]
    for figure, value in zip(STAGE_FIGURES, figures, strict=True):
        totals[figure] += value


def distribution_of(stage: dict[str, Any]) -> dict[str, Any] | None:
    """A merged stage's task distribution, decoded on first use (most stages of a comparison never need it)."""
    distribution = stage.get("distribution")
    if isinstance(distribution, str):
        distribution = stage["distribution"] = orjson.loads(distribution)
    return distribution


def _jobs(conn: Connection, apps: dict[str, dict[str, Any]], ctx_of: dict[str, str],
          work: dict[str, SparkWork]) -> None:
    for chunk in _chunks(list(apps)):
        for app_pk, submitted, result, reason, ctx, callsite in conn.execute(
                select(spark_jobs.c.spark_app_pk, spark_jobs.c.submission_time, spark_jobs.c.result,
                       spark_jobs.c.failure_reason, spark_jobs.c.context_id, spark_jobs.c.callsite)
                .where(spark_jobs.c.spark_app_pk.in_(chunk))):
            app = apps[app_pk]
            if not _counted(app, ctx, ctx_of):
                continue
            target = work[app["attempt"]]
            if submitted and (target.first_job_at is None or submitted < target.first_job_at):
                target.first_job_at = submitted
            if result == "failed":
                target.failed_jobs.append({"reason": reason, "callsite": callsite})


def _executors(conn: Connection, apps: dict[str, dict[str, Any]], work: dict[str, SparkWork]) -> None:
    """Each application's task slots (its executors' cores), and the executors removed while an (owned) application
    still ran: lost, not released at its end."""
    for chunk in _chunks(list(apps)):
        for app_pk, cores, removed, reason in conn.execute(
                select(spark_executors.c.spark_app_pk, spark_executors.c.cores, spark_executors.c.removed_time,
                       spark_executors.c.reason).where(spark_executors.c.spark_app_pk.in_(chunk))):
            target = work[apps[app_pk]["attempt"]]
            target.slots[app_pk] = target.slots.get(app_pk, 0) + (cores or 0)
            end = apps[app_pk]["end_time"]
            if removed is None or not apps[app_pk]["owned"] or (end is not None and removed >= end):
                continue
            target.executors_lost += 1
            if reason and len(target.lost_reasons) < 5:
                target.lost_reasons.append(reason)


# ---------------------------------------------------------------- trends

def task_trends(conn: Connection, attempt_pk: str, limit: int = 30) -> dict[str, Any] | None:
    """The task of this attempt over its last `limit` attempts up to this one, oldest first: one point per attempt
    (duration, Spark totals, each user metric's last numeric value) and one series per figure."""
    attempt = attempt_row(conn, attempt_pk)
    if attempt is None:
        return None
    attempts = recent_attempts(conn, attempt, limit)
    pks = [a["id"] for a in attempts]
    totals = spark_totals_by_attempt(conn, pks)
    user = _user_metrics(conn, pks)
    points = []
    for a in attempts:
        point = {"attempt_id": a["id"], "run_id": a["run_id"], "try_number": a["try_number"], "state": a["state"],
                 "time": a["logical_date"] or a["start_date"] or a["sort_key"], "duration_s": duration_of(a)}
        if a["id"] in totals:
            point["spark"] = totals[a["id"]]
        point["metrics"] = user.get(a["id"], {})
        points.append(point)
    series: dict[str, list[dict[str, Any]]] = {"duration_s": _series(points, lambda p: p["duration_s"])}
    for name in SPARK_TOTALS:
        values = _series(points, lambda p, n=name: (p.get("spark") or {}).get(n))
        if values:
            series["spark." + name] = values
    for key in sorted({k for p in points for k in p["metrics"]}):
        series["metric." + key] = _series(points, lambda p, k=key: p["metrics"].get(k))
    labels = {name: _label(name) for name in series}
    return {"task": {"uid": attempt["uid"], "dag_id": attempt["dag_id"], "task_id": attempt["task_id"],
                     "map_index": attempt["map_index"]},
            "attempt_id": attempt_pk, "points": points, "series": series, "labels": labels}


def _label(name: str) -> str:
    """A series name as a chart's title: `duration (s)`, `Spark: spill bytes`, `metric rows_out`."""
    if name.startswith("spark."):
        return "Spark: " + name[6:].replace("_", " ").replace(" ms", " (ms)")
    if name.startswith("metric."):
        return "metric " + name[7:]
    return "duration (s)"


def _series(points: list[dict[str, Any]], value) -> list[dict[str, Any]]:  # noqa: ANN001
    out = []
    for p in points:
        v = value(p)
        if v is not None:
            out.append({"time": p["time"], "attempt_id": p["attempt_id"], "value": v})
    return out


def _user_metrics(conn: Connection, attempt_pks: Sequence[str]) -> dict[str, dict[str, float]]:
    """attempt -> metric key -> its last numeric value in that attempt."""
    out: dict[str, dict[str, float]] = {}
    for chunk in _chunks(list(attempt_pks)):
        stmt = (select(contexts.c.attempt_pk, metrics.c.key, metrics.c.value_num)
                .join(contexts, contexts.c.id == metrics.c.context_id)
                .where(contexts.c.attempt_pk.in_(chunk), metrics.c.value_num.is_not(None),
                       metrics.c.value_type == "num")
                .order_by(metrics.c.time, metrics.c.id))
        for attempt_pk, key, value in conn.execute(stmt):
            out.setdefault(attempt_pk, {})[key] = value
    return out
