"""Rule evaluation. Level-triggered per subject: each rule looks at the *latest* state of its subject (a task,
a DAG, a dataset) and answers firing / clear / undecided. `apply()` turns answers into alert rows:

- firing and no open alert -> open one (unless the same occurrence `ref` was already resolved by a person),
- firing and open -> refresh it (de-duplication: one open alert per rule + subject),
- clear and open -> resolve it automatically ("the next run succeeded"),
- undecided (still running, not enough history) -> nothing.

Each open/resolve queues notifications in the outbox; delivery happens elsewhere, never in the ingest path.
"""

from __future__ import annotations

import statistics
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, select, update

from runlink import units
from runlink.instants import now_instant, parse_instant, seconds_between
from runlink.tracker import diagnosis, trends
from runlink.tracker.alerts import rules as rules_mod
from runlink.tracker.alerts.models import alert_notifications, alerts
from runlink.tracker.models import (
    contexts,
    dag_runs,
    dags,
    dataset_ops,
    datasets,
    metrics,
    spark_apps,
    spark_jobs,
    sql_queries,
    sql_statements,
    task_attempts,
)
from runlink.tracker.states import FAILED, error_text

TASK_KINDS = ("task_failed", "spark_failed", "duration", "metric", "slower", "skew", "spill", "sql_statement")
RUNNING = ("running", "queued", "scheduled", "deferred", "restarting", "up_for_reschedule", None)
SUCCESS = ("success", "skipped")


@dataclass
class Outcome:
    """One rule's answer about one subject. `firing` None = undecided."""

    rule: dict[str, Any]
    subject: str
    firing: bool | None
    ref: str | None = None
    title: str = ""
    message: str = ""
    value: float | None = None
    bound: float | None = None
    links: dict[str, Any] = field(default_factory=dict)


@dataclass
class TaskSubject:
    uid: str | None
    dag_id: str
    task_id: str
    map_index: int

    @property
    def key(self) -> str:
        return f"task|{self.uid or ''}|{self.dag_id}|{self.task_id}|{self.map_index}"

    @property
    def label(self) -> str:
        mapped = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}.{self.task_id}{mapped}"


def _rows(conn: Connection, stmt) -> list[dict[str, Any]]:  # noqa: ANN001
    result = conn.execute(stmt)
    keys = [str(k) for k in result.keys()]
    return [dict(zip(keys, row, strict=False)) for row in result.fetchall()]


def _scope_ok(rule: dict[str, Any], uid: str | None, dag_id: str, task_id: str | None) -> bool:
    if rule["instance"] and rule["instance"] != uid:
        return False
    if not rules_mod.matches(rule["dag_id"], dag_id):
        return False
    return rules_mod.matches(rule["task_id"], task_id)


# ---------------------------------------------------------------- subjects touched by a batch

def task_subjects(conn: Connection, context_ids: Iterable[str], app_pks: Iterable[str]) -> list[TaskSubject]:
    """The tasks (uid, dag, task, map index) whose attempts own these contexts or Spark apps."""
    ctx = set(context_ids)
    apps = list(set(app_pks))
    for start in range(0, len(apps), 900):
        ctx.update(r[0] for r in conn.execute(select(spark_apps.c.context_id).where(
            spark_apps.c.id.in_(apps[start:start + 900]), spark_apps.c.context_id.is_not(None))))
    ctx_list = list(ctx)
    attempt_pks: set[str] = set()
    for start in range(0, len(ctx_list), 900):
        attempt_pks.update(r[0] for r in conn.execute(select(contexts.c.attempt_pk).where(
            contexts.c.id.in_(ctx_list[start:start + 900]), contexts.c.attempt_pk.is_not(None))))
    out: dict[str, TaskSubject] = {}
    pks = list(attempt_pks)
    for start in range(0, len(pks), 900):
        for r in conn.execute(select(dag_runs.c.uid, dag_runs.c.dag_id, task_attempts.c.task_id,
                                     task_attempts.c.map_index)
                              .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
                              .where(task_attempts.c.id.in_(pks[start:start + 900]))):
            subject = TaskSubject(r.uid, r.dag_id, r.task_id, r.map_index)
            out[subject.key] = subject
    return list(out.values())


def dag_subjects(conn: Connection, context_ids: Iterable[str]) -> set[tuple[str | None, str]]:
    ctx = list(set(context_ids))
    out: set[tuple[str | None, str]] = set()
    for start in range(0, len(ctx), 900):
        for r in conn.execute(select(dag_runs.c.uid, dag_runs.c.dag_id).join(
                contexts, contexts.c.run_pk == dag_runs.c.id).where(contexts.c.id.in_(ctx[start:start + 900]))):
            out.add((r.uid, r.dag_id))
    return out


def _attempts_of(conn: Connection, s: TaskSubject, limit: int) -> list[dict[str, Any]]:
    """Attempts of a task, newest first (run order, then try number)."""
    stmt = (select(task_attempts.c.id, task_attempts.c.run_pk, task_attempts.c.try_number, task_attempts.c.state,
                   task_attempts.c.duration_s, task_attempts.c.start_date, task_attempts.c.end_date,
                   task_attempts.c.error, task_attempts.c.max_tries, dag_runs.c.run_id)
            .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk)
            .where(dag_runs.c.dag_id == s.dag_id, task_attempts.c.task_id == s.task_id,
                   task_attempts.c.map_index == s.map_index)
            .where(dag_runs.c.uid == s.uid if s.uid is not None else dag_runs.c.uid.is_(None))
            .order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc(), task_attempts.c.try_number.desc())
            .limit(limit))
    return _rows(conn, stmt)


def _links(attempt: dict[str, Any], s: TaskSubject) -> dict[str, Any]:
    return {"task_attempt": attempt["id"], "dag_run": attempt["run_pk"], "dag_id": s.dag_id, "task_id": s.task_id,
            "run_id": attempt.get("run_id")}


def _duration(a: dict[str, Any]) -> float | None:
    if a.get("duration_s") is not None:
        return float(a["duration_s"])
    return seconds_between(a.get("start_date"), a.get("end_date"))


# ---------------------------------------------------------------- task-level kinds

def eval_task(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome | None:
    if not _scope_ok(rule, s.uid, s.dag_id, s.task_id):
        return None
    kind = rule["kind"]
    if kind == "task_failed":
        return _task_failed(conn, rule, s)
    if kind == "spark_failed":
        return _spark_failed(conn, rule, s)
    if kind == "duration" and rule["task_id"]:
        return _task_duration(conn, rule, s)
    if kind == "metric":
        return _metric(conn, rule, s)
    if kind == "slower":
        return _slower(conn, rule, s)
    if kind in ("skew", "spill"):
        return _stage_trouble(conn, rule, s)
    if kind == "sql_statement":
        return _sql_statements(conn, rule, s)
    return None


def _task_failed(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome:
    latest = (_attempts_of(conn, s, 1) or [None])[0]
    if latest is None:
        return Outcome(rule, s.key, None)
    state = latest["state"]
    retries = rule["params"].get("include_retries")
    failing = state in FAILED or (retries and state == "up_for_retry")
    if failing:
        error = error_text(latest["error"]) or "no error message"
        return Outcome(rule, s.key, True, ref=latest["id"],
                       title=f"Task failed: {s.label} (try {latest['try_number']})",
                       message=f"{s.label} in run {latest['run_id']} ended {state}: {error}", links=_links(latest, s))
    if state in SUCCESS:
        return Outcome(rule, s.key, False, ref=latest["id"],
                       message=f"{s.label} succeeded in run {latest['run_id']} (try {latest['try_number']})",
                       links=_links(latest, s))
    return Outcome(rule, s.key, None)


def _spark_failed(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome:
    latest = (_attempts_of(conn, s, 1) or [None])[0]
    if latest is None:
        return Outcome(rule, s.key, None)
    apps = _rows(conn, select(spark_apps.c.id, spark_apps.c.app_id, spark_apps.c.end_time)
                 .join(contexts, contexts.c.id == spark_apps.c.context_id)
                 .where(contexts.c.attempt_pk == latest["id"]))
    if not apps:
        return Outcome(rule, s.key, False if latest["state"] in SUCCESS else None, ref=latest["id"],
                       message=f"{s.label} ran without a failing Spark application", links=_links(latest, s))
    pks = [a["id"] for a in apps]
    jobs = _rows(conn, select(spark_jobs.c.spark_app_pk, spark_jobs.c.job_id, spark_jobs.c.failure_reason)
                 .where(spark_jobs.c.spark_app_pk.in_(pks), spark_jobs.c.result == "failed"))
    failed_queries = _rows(conn, select(sql_queries.c.spark_app_pk, sql_queries.c.execution_id, sql_queries.c.error,
                                        sql_queries.c.action)
                           .where(sql_queries.c.spark_app_pk.in_(pks), sql_queries.c.success.is_(False)))
    if jobs or failed_queries:
        first = jobs[0] if jobs else None
        reason = (first["failure_reason"] if first else error_text(failed_queries[0]["error"])) or "no reason"
        app_pk = first["spark_app_pk"] if first else failed_queries[0]["spark_app_pk"]
        links = {**_links(latest, s), "spark_app": app_pk}
        return Outcome(rule, s.key, True, ref=latest["id"], value=float(len(jobs) + len(failed_queries)),
                       title=f"Spark failed in {s.label}: {len(jobs)} job(s), {len(failed_queries)} query(ies)",
                       message=f"run {latest['run_id']}: {reason.splitlines()[0][:400]}", links=links)
    if latest["state"] in SUCCESS or all(a["end_time"] for a in apps):
        return Outcome(rule, s.key, False, ref=latest["id"],
                       message=f"{s.label}: Spark jobs and queries succeeded in run {latest['run_id']}",
                       links=_links(latest, s))
    return Outcome(rule, s.key, None)


def _bound_from_history(rule: dict[str, Any], history: list[float]) -> tuple[float | None, str]:
    params = rule["params"]
    bounds = []
    why = []
    if params.get("max_s") is not None:
        bounds.append(float(params["max_s"]))
        why.append(f"fixed bound {params['max_s']:g}s")
    if params.get("k") is not None and len(history) >= int(params.get("min_history", 3)):
        median = statistics.median(history)
        bounds.append(median * float(params["k"]))
        why.append(f"{params['k']:g} x median {median:.1f}s of the last {len(history)} runs")
    if not bounds:
        return None, "not enough history"
    return min(bounds), " and ".join(why)


def _task_duration(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome:
    n = int(rule["params"].get("n", 10))
    attempts_ = [a for a in _attempts_of(conn, s, n * 3 + 5) if a["state"] not in RUNNING]
    if not attempts_:
        return Outcome(rule, s.key, None)
    latest = attempts_[0]
    value = _duration(latest)
    if value is None:
        return Outcome(rule, s.key, None)
    history = [d for d in (_duration(a) for a in attempts_[1:] if a["state"] == "success") if d is not None][:n]
    bound, why = _bound_from_history(rule, history)
    if bound is None:
        return Outcome(rule, s.key, None)
    firing = value > bound
    explained = _explanation(conn, latest["id"], n) if firing else ""
    return Outcome(rule, s.key, firing, ref=latest["id"], value=value, bound=bound,
                   title=f"Slow task: {s.label} took {value:.1f}s (bound {bound:.1f}s)",
                   message=f"run {latest['run_id']}: {value:.1f}s > {why}{explained}" if firing
                   else f"run {latest['run_id']}: {value:.1f}s within {why}", links=_links(latest, s))


def _explanation(conn: Connection, attempt_pk: str, n: int) -> str:
    """What explains a slow attempt (the diagnosis summary), for a firing alert's message."""
    found = diagnosis.diagnose(conn, attempt_pk, n)
    return f". {found['summary']}" if found else ""


def _slower(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome:
    """The latest finished attempt above k x the median of the task's last n successful runs; the message is the
    diagnosis (computed only when firing: the check itself reads n + a few attempts)."""
    params = rule["params"]
    n, k = int(params.get("n", 10)), float(params.get("k", 1.5))
    attempts_ = [a for a in _attempts_of(conn, s, n * 3 + 5) if a["state"] not in RUNNING]
    latest = attempts_[0] if attempts_ else None
    value = _duration(latest) if latest else None
    history = [d for d in (_duration(a) for a in attempts_[1:] if a["state"] == "success") if d is not None][:n]
    if latest is None or value is None or len(history) < int(params.get("min_history", 3)):
        return Outcome(rule, s.key, None)
    median = statistics.median(history)
    bound = median * k
    firing = value > bound
    why = f"{k:g} x median {median:.1f}s of the last {len(history)} successful runs"
    if not firing:
        return Outcome(rule, s.key, False, ref=latest["id"], value=value, bound=bound,
                       message=f"run {latest['run_id']}: {value:.1f}s within {why}", links=_links(latest, s))
    found = diagnosis.diagnose(conn, latest["id"], n)
    message = found["summary"] if found else f"run {latest['run_id']}: {value:.1f}s > {why}"
    return Outcome(rule, s.key, True, ref=latest["id"], value=value, bound=bound,
                   title=f"Slower than its history: {s.label} took {value:.1f}s (> {why})",
                   message=message, links=_links(latest, s))


def _stage_trouble(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome:
    """skew: a stage of the latest finished attempt whose slowest task is over `ratio` x its median task (from the
    task distribution, else estimated from the stage's totals); spill: the attempt spilled over `min_bytes`."""
    latest = next((a for a in _attempts_of(conn, s, 5) if a["state"] not in RUNNING), None)
    if latest is None:
        return Outcome(rule, s.key, None)
    work = trends.spark_work(conn, [latest["id"]])[latest["id"]]
    params = rule["params"]
    if rule["kind"] == "skew":
        worst: tuple[dict[str, Any], dict[str, Any]] | None = None
        for stage in work.stages:
            found = diagnosis.skew_of(stage, work.slots.get(stage["app_pk"]))
            if found and stage["wall_s"] >= float(params.get("min_stage_s", 1.0)) and (
                    worst is None or found["ratio"] > worst[0]["ratio"]):
                worst = (found, stage)
        bound = float(params.get("ratio", 3.0))
        if worst is None or worst[0]["ratio"] <= bound:
            return Outcome(rule, s.key, False, ref=latest["id"], bound=bound, links=_links(latest, s),
                           message=f"{s.label}: no stage over {bound:g}x in run {latest['run_id']}")
        skew, stage = worst
        site = diagnosis.stage_label(stage)
        return Outcome(rule, s.key, True, ref=latest["id"], value=skew["ratio"], bound=bound, links=_links(latest, s),
                       title=f"Skew in {s.label}: stage '{site}' {skew['ratio']:.1f}x the median task",
                       message=f"run {latest['run_id']}: stage '{site}' skew: {diagnosis.skew_text(skew)}, "
                               f"over {bound:g}x")
    spills = sorted(((diagnosis.spill_of(stage), stage) for stage in work.stages), key=lambda p: -p[0])
    total = float(sum(p[0] for p in spills))
    bound = float(params.get("min_bytes", 0))
    if total <= bound:
        return Outcome(rule, s.key, False, ref=latest["id"], value=total, bound=bound, links=_links(latest, s),
                       message=f"{s.label}: spill {units.size(total)} within {units.size(bound)}")
    top = "; ".join(f"'{diagnosis.stage_label(stage)}' {units.size(b)}" for b, stage in spills[:3] if b)
    return Outcome(rule, s.key, True, ref=latest["id"], value=total, bound=bound, links=_links(latest, s),
                   title=f"Spill in {s.label}: {units.size(total)}",
                   message=f"run {latest['run_id']}: spill {units.size(total)} over {units.size(bound)}: {top}")


def _metric_value(conn: Connection, attempt_pk: str, key: str) -> float | None:
    row = conn.execute(select(metrics.c.value_num).join(contexts, contexts.c.id == metrics.c.context_id)
                       .where(contexts.c.attempt_pk == attempt_pk, metrics.c.key == key,
                              metrics.c.value_num.is_not(None))
                       .order_by(metrics.c.time.desc(), metrics.c.id.desc()).limit(1)).first()
    return row[0] if row else None


def _check_value(params: dict[str, Any], value: float, previous: float | None) -> tuple[bool, str, float | None]:
    """(outside?, why, the bound crossed)."""
    if params.get("min") is not None and value < params["min"]:
        return True, f"{value:g} < min {params['min']:g}", params["min"]
    if params.get("max") is not None and value > params["max"]:
        return True, f"{value:g} > max {params['max']:g}", params["max"]
    if params.get("change_pct") is not None and previous is not None:
        if previous == 0:
            change = 0.0 if value == 0 else float("inf")
        else:
            change = abs(value - previous) / abs(previous) * 100
        if change > params["change_pct"]:
            shown = "from 0" if change == float("inf") else f"{change:.1f}%"
            why = f"{previous:g} -> {value:g} changed {shown} (> {params['change_pct']:g}%)"
            return True, why, params["change_pct"]
    return False, f"{value:g} within bounds" + (f" (previous {previous:g})" if previous is not None else ""), None


def _metric(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome | None:
    key = rule["params"]["key"]
    subject = s.key + "|" + key
    found: list[tuple[dict[str, Any], float]] = []
    for attempt in _attempts_of(conn, s, 20):
        value = _metric_value(conn, attempt["id"], key)
        if value is not None:
            found.append((attempt, value))
            if len(found) == 2:
                break
    if not found:
        return None
    latest, value = found[0]
    previous = found[1][1] if len(found) > 1 else None
    outside, why, bound = _check_value(rule["params"], value, previous)
    return Outcome(rule, subject, outside, ref=latest["id"], value=value, bound=bound,
                   title=f"Metric {key} of {s.label}: {why}", message=f"run {latest['run_id']}: {why}",
                   links={**_links(latest, s), "metric": key})


def _statement_matches(needle: str | None, statement: dict[str, Any]) -> bool:
    if not needle:
        return True
    tables = [*orjson.loads(statement["tables_read"] or "[]"), *orjson.loads(statement["tables_written"] or "[]")]
    if any(ch in needle for ch in "*?["):
        return any(rules_mod.matches(needle, v) for v in (statement["statement"], *tables))
    return needle.lower() in statement["statement"].lower() or needle in tables


def _sql_statements(conn: Connection, rule: dict[str, Any], s: TaskSubject) -> Outcome | None:
    """The latest attempt's SQL statements (those matching `statement`): any with rows below min_rows, above
    max_rows, or longer than max_s fires; an ended attempt whose statements are all within clears."""
    params = rule["params"]
    subject = f"{s.key}|sql|{params.get('statement') or ''}"
    latest = (_attempts_of(conn, s, 1) or [None])[0]
    if latest is None:
        return None
    found = [r for r in _rows(conn, select(sql_statements.c.statement, sql_statements.c.rows,
                                           sql_statements.c.duration_ms, sql_statements.c.query_id,
                                           sql_statements.c.tables_read, sql_statements.c.tables_written,
                                           sql_statements.c.seq)
                              .join(contexts, contexts.c.id == sql_statements.c.context_id)
                              .where(contexts.c.attempt_pk == latest["id"], sql_statements.c.success.is_(True))
                              .order_by(sql_statements.c.start_time, sql_statements.c.seq))
             if _statement_matches(params.get("statement"), r)]
    if not found:
        return None if latest["state"] in RUNNING else Outcome(
            rule, subject, False, ref=latest["id"], message=f"{s.label}: no matching SQL statement in run "
                                                            f"{latest['run_id']}", links=_links(latest, s))
    for r in found:
        rows, took = r["rows"], None if r["duration_ms"] is None else r["duration_ms"] / 1000
        why, value, bound = None, None, None
        if rows is not None and params.get("min_rows") is not None and rows < params["min_rows"]:
            why, value, bound = f"{rows:g} rows < min {params['min_rows']:g}", float(rows), params["min_rows"]
        elif rows is not None and params.get("max_rows") is not None and rows > params["max_rows"]:
            why, value, bound = f"{rows:g} rows > max {params['max_rows']:g}", float(rows), params["max_rows"]
        elif took is not None and params.get("max_s") is not None and took > params["max_s"]:
            why, value, bound = f"took {took:.1f}s > {params['max_s']:g}s", took, params["max_s"]
        if why:
            text = " ".join(r["statement"].split())[:200]
            return Outcome(rule, subject, True, ref=latest["id"], value=value, bound=bound,
                           title=f"SQL statement of {s.label}: {why}",
                           message=f"run {latest['run_id']}, statement {r['seq']}"
                                   f"{' (query ' + r['query_id'] + ')' if r['query_id'] else ''}: {why}: {text}",
                           links={**_links(latest, s), "sql_statement": r["seq"]})
    if latest["state"] in RUNNING:
        return Outcome(rule, subject, None)
    return Outcome(rule, subject, False, ref=latest["id"], links=_links(latest, s),
                   message=f"{s.label}: {len(found)} SQL statement(s) within bounds in run {latest['run_id']}")


# ---------------------------------------------------------------- DAG-level kinds

def eval_dag_duration(conn: Connection, rule: dict[str, Any], uid: str | None, dag_id: str) -> Outcome | None:
    if rule["kind"] != "duration" or rule["task_id"] or not _scope_ok(rule, uid, dag_id, None):
        return None
    n = int(rule["params"].get("n", 10))
    runs = _rows(conn, select(dag_runs.c.id, dag_runs.c.run_id, dag_runs.c.state, dag_runs.c.start_date,
                              dag_runs.c.end_date)
                 .where(dag_runs.c.dag_id == dag_id)
                 .where(dag_runs.c.uid == uid if uid is not None else dag_runs.c.uid.is_(None))
                 .where(dag_runs.c.state.in_(("success", "failed")))
                 .order_by(dag_runs.c.sort_key.desc(), dag_runs.c.id.desc()).limit(n + 1))
    if not runs:
        return None
    latest = runs[0]
    value = seconds_between(latest["start_date"], latest["end_date"])
    if value is None:
        return None
    history = [d for d in (seconds_between(r["start_date"], r["end_date"]) for r in runs[1:]
                           if r["state"] == "success") if d is not None]
    bound, why = _bound_from_history(rule, history)
    if bound is None:
        return None
    subject = f"dag|{uid or ''}|{dag_id}"
    firing = value > bound
    return Outcome(rule, subject, firing, ref=latest["id"], value=value, bound=bound,
                   title=f"Slow DAG run: {dag_id} took {value:.1f}s (bound {bound:.1f}s)",
                   message=f"run {latest['run_id']}: {value:.1f}s " + ("> " if firing else "within ") + why,
                   links={"dag_run": latest["id"], "dag_id": dag_id, "run_id": latest["run_id"]})


def eval_dag_missing(conn: Connection, rule: dict[str, Any], now: str) -> list[Outcome]:
    """For each synced DAG matching the rule: is `now` past its next expected run (+ grace) with no such run?"""
    if rule["kind"] != "dag_missing":
        return []
    grace = float(rule["params"].get("grace_s", 600))
    current = parse_instant(now)
    out: list[Outcome] = []
    for d in _rows(conn, select(dags.c.uid, dags.c.dag_id, dags.c.next_run_date, dags.c.is_paused,
                                dags.c.is_active)):
        if not _scope_ok(rule, d["uid"], d["dag_id"], None):
            continue
        subject = f"dag|{d['uid'] or ''}|{d['dag_id']}"
        expected = parse_instant(d["next_run_date"])
        if expected is None or d["is_paused"] or d["is_active"] is False:
            out.append(Outcome(rule, subject, False,
                               message=f"{d['dag_id']}: no expected run (paused, unscheduled or gone from Airflow)"))
            continue
        due = expected + timedelta(seconds=grace)
        if current is None or current < due:
            out.append(Outcome(rule, subject, False, ref=d["next_run_date"],
                               message=f"{d['dag_id']}: next run expected {d['next_run_date']}"))
            continue
        run = conn.execute(select(dag_runs.c.id).where(dag_runs.c.dag_id == d["dag_id"])
                           .where(dag_runs.c.uid == d["uid"] if d["uid"] else dag_runs.c.uid.is_(None))
                           .where((dag_runs.c.logical_date >= d["next_run_date"])
                                  | (dag_runs.c.start_date >= d["next_run_date"])).limit(1)).first()
        if run is not None:
            out.append(Outcome(rule, subject, False, ref=d["next_run_date"],
                               message=f"{d['dag_id']}: the run expected at {d['next_run_date']} arrived",
                               links={"dag_run": run[0], "dag_id": d["dag_id"]}))
            continue
        late = (current - expected).total_seconds()
        out.append(Outcome(rule, subject, True, ref=d["next_run_date"], value=late, bound=grace,
                           title=f"DAG run missing: {d['dag_id']} expected at {d['next_run_date']}",
                           message=f"{d['dag_id']} ({d['uid'] or 'no instance'}): no run {late:.0f}s after its "
                                   f"expected time {d['next_run_date']} (grace {grace:.0f}s)",
                           links={"dag_id": d["dag_id"]}))
    return out


# ---------------------------------------------------------------- datasets

def eval_dataset(conn: Connection, rule: dict[str, Any]) -> list[Outcome]:
    if rule["kind"] != "dataset_rows":
        return []
    params = rule["params"]
    needle = params["dataset"]
    stmt = select(datasets.c.id, datasets.c.identity, datasets.c.path, datasets.c.table_name, datasets.c.uri)
    if "*" in needle or "?" in needle:
        candidates = [r for r in _rows(conn, stmt) if any(
            rules_mod.matches(needle, v) for v in (r["identity"], r["path"], r["table_name"], r["uri"]) if v)]
    else:
        candidates = _rows(conn, stmt.where(datasets.c.identity.contains(needle, autoescape=True)))
    out = []
    for ds in candidates:
        ops = select(dataset_ops.c.id, dataset_ops.c.rows, dataset_ops.c.time, dataset_ops.c.operation,
                     contexts.c.attempt_pk, contexts.c.run_pk, contexts.c.dag_id, contexts.c.task_id,
                     contexts.c.uid).outerjoin(contexts, contexts.c.id == dataset_ops.c.context_id).where(
            dataset_ops.c.dataset_pk == ds["id"], dataset_ops.c.rows.is_not(None))
        if params.get("operation", "write") != "any":
            ops = ops.where(dataset_ops.c.operation == params.get("operation", "write"))
        rows = _rows(conn, ops.order_by(dataset_ops.c.time.desc(), dataset_ops.c.id.desc()).limit(2))
        if not rows:
            continue
        latest = rows[0]
        if not _scope_ok(rule, latest["uid"] if rule["instance"] else None,
                         latest["dag_id"] or "", latest["task_id"]) and (rule["dag_id"] or rule["task_id"]):
            continue
        value = float(latest["rows"])
        previous = float(rows[1]["rows"]) if len(rows) > 1 else None
        outside, why, bound = _check_value(params, value, previous)
        label = ds["table_name"] or ds["path"] or ds["uri"] or ds["identity"]
        out.append(Outcome(rule, "dataset|" + ds["identity"], outside, ref=latest["id"], value=value, bound=bound,
                           title=f"Rows of {label}: {why}",
                           message=f"{latest['operation']} by {latest['dag_id'] or '?'}.{latest['task_id'] or '?'}: "
                                   f"{why}",
                           links={"dataset": ds["id"], "task_attempt": latest["attempt_pk"],
                                  "dag_run": latest["run_pk"], "dag_id": latest["dag_id"]}))
    return out


# ---------------------------------------------------------------- apply

def _open_alert(conn: Connection, rule_id: str, subject: str) -> Any:
    return conn.execute(select(alerts).where(alerts.c.rule_id == rule_id, alerts.c.subject == subject,
                                             alerts.c.state == "open")).first()


def _payload(event: str, alert: dict[str, Any], rule: dict[str, Any], base_url: str | None) -> dict[str, Any]:
    from runlink.tracker.alerts.notify import build_payload

    return build_payload(event, alert, rule, base_url)


def _queue(conn: Connection, event: str, alert: dict[str, Any], rule: dict[str, Any], base_url: str | None,
           now: str) -> int:
    targets = []
    if rule.get("webhook_url"):
        targets.append(("webhook", rule["webhook_url"]))
    for email in rule.get("email_to") or []:
        targets.append(("email", email))
    payload = orjson.dumps(_payload(event, alert, rule, base_url)).decode()
    for channel, target in targets:
        conn.execute(alert_notifications.insert().values(
            id=str(uuid.uuid4()), alert_id=alert["id"], event=event, channel=channel, target=target,
            payload=payload, status="pending", attempts=0, next_attempt_at=now, created_at=now))
    return len(targets)


def apply(conn: Connection, outcomes: Iterable[Outcome], base_url: str | None = None) -> dict[str, int]:
    """Write the outcomes (inside the caller's write transaction). Returns counts of opened/resolved/queued."""
    now = now_instant()
    counts = {"opened": 0, "resolved": 0, "refreshed": 0, "queued": 0}
    for o in outcomes:
        if o.firing is None:
            continue
        rule = o.rule
        current = _open_alert(conn, rule["id"], o.subject)
        if o.firing:
            if current is not None:
                conn.execute(update(alerts).where(alerts.c.id == current.id).values(
                    last_seen_at=now, value=o.value, bound=o.bound, message=o.message or current.message))
                counts["refreshed"] += 1
                continue
            if o.ref is not None:
                seen = conn.execute(select(alerts.c.id).where(
                    alerts.c.rule_id == rule["id"], alerts.c.subject == o.subject, alerts.c.ref == o.ref)).first()
                if seen is not None:  # this very occurrence was alerted and resolved already
                    continue
            alert = {"id": str(uuid.uuid4()), "rule_id": rule["id"], "subject": o.subject, "state": "open",
                     "title": o.title[:2000], "message": o.message, "value": o.value, "bound": o.bound,
                     "ref": o.ref, "links": orjson.dumps(o.links).decode(), "opened_at": now, "last_seen_at": now}
            conn.execute(alerts.insert().values(**alert))
            alert["links"] = o.links
            counts["opened"] += 1
            counts["queued"] += _queue(conn, "fired", alert, rule, base_url, now)
        elif current is not None:
            conn.execute(update(alerts).where(alerts.c.id == current.id).values(
                state="resolved", resolved_at=now, resolved_by="auto", resolution=o.message or "condition cleared",
                last_seen_at=now))
            alert = rules_mod.alert_dict(current)
            alert.update(state="resolved", resolved_at=now, resolved_by="auto", resolution=o.message)
            counts["resolved"] += 1
            counts["queued"] += _queue(conn, "resolved", alert, rule, base_url, now)
    return counts


def evaluate_touched(conn: Connection, rules: list[dict[str, Any]], context_ids: set[str], app_pks: set[str],
                     datasets_touched: bool) -> list[Outcome]:
    """Outcomes for what a batch touched: the tasks/DAGs of its contexts and Spark apps, and dataset rules."""
    outcomes: list[Outcome] = []
    task_rules = [r for r in rules if r["kind"] in TASK_KINDS]
    if task_rules and (context_ids or app_pks):
        for subject in task_subjects(conn, context_ids, app_pks):
            for rule in task_rules:
                outcome = eval_task(conn, rule, subject)
                if outcome is not None:
                    outcomes.append(outcome)
    dag_rules = [r for r in rules if r["kind"] == "duration" and not r["task_id"]]
    if dag_rules and context_ids:
        for uid, dag_id in dag_subjects(conn, context_ids):
            for rule in dag_rules:
                outcome = eval_dag_duration(conn, rule, uid, dag_id)
                if outcome is not None:
                    outcomes.append(outcome)
    if datasets_touched:
        for rule in rules:
            outcomes.extend(eval_dataset(conn, rule))
    return outcomes


def evaluate_periodic(conn: Connection, rules: list[dict[str, Any]], now: str | None = None) -> list[Outcome]:
    """What time alone can change: missing DAG runs."""
    now = now or now_instant()
    outcomes: list[Outcome] = []
    for rule in rules:
        outcomes.extend(eval_dag_missing(conn, rule, now))
    return outcomes


def evaluate_rule_everywhere(conn: Connection, rule: dict[str, Any]) -> list[Outcome]:
    """A new or edited rule looks at the current state of every subject it covers (so a rule made after last
    night's failure shows it)."""
    if rule["kind"] in TASK_KINDS and not (rule["kind"] == "duration" and not rule["task_id"]):
        stmt = (select(dag_runs.c.uid, dag_runs.c.dag_id, task_attempts.c.task_id, task_attempts.c.map_index)
                .join(dag_runs, dag_runs.c.id == task_attempts.c.run_pk).distinct())
        if rule["dag_id"] and not any(ch in rule["dag_id"] for ch in "*?["):
            stmt = stmt.where(dag_runs.c.dag_id == rule["dag_id"])
        out = []
        for r in conn.execute(stmt):
            outcome = eval_task(conn, rule, TaskSubject(r.uid, r.dag_id, r.task_id, r.map_index))
            if outcome is not None:
                out.append(outcome)
        return out
    if rule["kind"] == "duration":
        pairs = conn.execute(select(dag_runs.c.uid, dag_runs.c.dag_id).distinct()).all()
        return [o for o in (eval_dag_duration(conn, rule, uid, dag_id) for uid, dag_id in pairs) if o is not None]
    if rule["kind"] == "dataset_rows":
        return eval_dataset(conn, rule)
    return eval_dag_missing(conn, rule, now_instant())
