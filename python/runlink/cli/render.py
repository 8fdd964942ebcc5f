"""A DAG-run tree (the API's JSON) as readable text for `runlink runs show`, control characters escaped: tasks in
the order they ran, durations and sizes in human units, errors cut at a word (`--full` prints them whole)."""

from __future__ import annotations

from typing import Any

from runlink import units
from runlink.instants import seconds_between
from runlink.terminal import printable

#: characters of an error message shown without `--full`
ERROR_WIDTH = 100
#: characters of a diagnosis line (its verdict and up to three stages with their causes) shown without `--full`
DIAGNOSIS_WIDTH = 240


def _span(node: dict[str, Any], start: str = "start_date", end: str = "end_date") -> str:
    begin, finish = node.get(start), node.get(end)
    if not begin and not finish:
        return ""
    text = f"  {units.instant(begin, '?')} -> {units.instant(finish, '...')}"
    took = node.get("duration_s")
    if took is None:
        took = seconds_between(begin, finish)
    return text + (f"  ({units.duration(took)})" if took is not None else "")


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float):
        return units.number(value)
    return units.clip(str(value), 40)


def _datasets(items: list[dict[str, Any]]) -> str:
    return ", ".join(o.get("path") or o.get("table") or o.get("uri") or "?" for o in items)


def _at(item: dict[str, Any]) -> str:
    """` at file:line function`: the user's code line that ran a job, query or stage, when known."""
    return f" at {units.clip(item['callsite'], 120)}" if item.get("callsite") else ""


def _app_lines(app: dict[str, Any], full: bool) -> list[str]:
    stages = app.get("stages", [])
    failed = sum(1 for s in stages if s["status"] == "failed")
    run_ms = sum((s["metrics"].get("executor_run_time_ms") or 0) for s in stages)
    state = app.get("state") or ("ended" if app.get("end_time") else "running")
    lines = [
        f"spark app {app['app_id']} {app.get('name') or ''} [{state}]{_span(app, 'start_time', 'end_time')}",
        f"  jobs {len(app.get('jobs', []))}, stages {len(stages)} ({failed} failed), "
        f"executor run time {units.duration(run_ms / 1000)}, "
        f"input {units.size(sum((s['metrics'].get('input_bytes') or 0) for s in stages))}, "
        f"shuffle write {units.size(sum((s['metrics'].get('shuffle_write_bytes') or 0) for s in stages))}",
    ]
    for job in app.get("jobs", [])[:20]:
        lines.append(f"  job {job['job_id']} {job.get('result') or 'running'}" + _at(job)
                     + (f": {_error_text(job['failure_reason'], full)}" if job.get("failure_reason") else ""))
    if len(app.get("jobs", [])) > 20:
        lines.append(f"  ... {len(app['jobs']) - 20} more jobs")
    for query in app.get("queries", [])[:20]:
        ins, outs = _datasets(query.get("inputs", [])), _datasets(query.get("outputs", []))
        status = "ok" if query.get("success") else "FAILED"
        took = None if query.get("duration_ms") is None else query["duration_ms"] / 1000
        lines.append(f"  query {query.get('action') or '?'} {status} {units.duration(took)}" + _at(query)
                     + (f" in: {ins}" if ins else "") + (f" out: {outs}" if outs else ""))
    skewed = max((s for s in stages if s.get("task_skew")), key=lambda s: s["task_skew"], default=None)
    if skewed is not None:
        tasks = ((skewed.get("distribution") or {}).get("metrics") or {}).get("duration_ms") or {}
        lines.append(f"  most uneven stage {skewed['stage_id']}{_at(skewed)}: slowest task "
                     f"{units.duration((tasks.get('max') or 0) / 1000)}, {skewed['task_skew']:.1f}x the median "
                     f"{units.duration((tasks.get('p50') or 0) / 1000)}")
    for stream in app.get("streaming", [])[:20]:
        lines.append(_streaming_line(stream))
    return lines


def _streaming_line(q: dict[str, Any]) -> str:
    """One streaming query run: totals, the latest interval's rate, batch durations, the failure."""
    batches = q.get("total_batches") or 0
    mean = (q.get("total_batch_ms") or 0) / batches / 1000 if batches else None
    longest = None if q.get("max_batch_ms") is None else q["max_batch_ms"] / 1000
    rate = q.get("input_rows_per_s")
    error = q.get("error") or {}
    failure = ": ".join(p for p in (error.get("type"), error.get("message")) if p)
    return (f"  streaming {_value(q.get('name') or q['query_id'])} [{_value(q['state'])}] "
            f"{units.number(batches)} batches, {units.number(q.get('total_input_rows') or 0)} rows, "
            f"{units.number(rate)} rows/s, batch {units.duration(mean)} mean / {units.duration(longest)} max"
            + (f": {_value(failure)}" if failure else ""))


def _statement_line(q: dict[str, Any], full: bool) -> str:
    """One statement an Airflow SQL hook ran: engine, query id, duration, rows, tables, the error."""
    took = None if q.get("duration_ms") is None else q["duration_ms"] / 1000
    text = " ".join(str(q.get("statement") or "").split())
    head = (f"sql {q.get('engine') or '?'} {'ok' if q.get('success') else 'FAILED'} {units.duration(took)}"
            + ("" if q.get("rows") is None else f" rows={units.number(q['rows'])}")
            + (f" id={q['query_id']}" if q.get("query_id") else ""))
    tables = [f"in: {', '.join(q['tables_read'])}"] if q.get("tables_read") else []
    tables += [f"out: {', '.join(q['tables_written'])}"] if q.get("tables_written") else []
    error = q.get("error") or {}
    failure = ": ".join(str(p) for p in (error.get("type"), error.get("message")) if p)
    line = f"{head} {text if full else units.clip(text, 60)}" + (f" {' '.join(tables)}" if tables else "")
    return line + (f"\nerror: {_error_text(failure, full)}" if failure else "")


def _error_text(message: Any, full: bool) -> str:
    """The whole message with `--full` (its lines kept), else its first ERROR_WIDTH characters cut at a word."""
    text = str(message or "")
    return text if full else units.clip(text, ERROR_WIDTH)


def _run_order(attempt: dict[str, Any]) -> tuple[bool, str, str, int, int]:
    """Start time first (attempts that never started last), then task id, map index and try."""
    return (attempt.get("start_date") is None, attempt.get("start_date") or "", attempt.get("task_id") or "",
            attempt.get("map_index") if attempt.get("map_index") is not None else -1,
            attempt.get("try_number") if attempt.get("try_number") is not None else 0)


def _indented(pad: str, text: str) -> list[str]:
    first, *rest = text.split("\n")
    return [pad + first] + [pad + "  " + line for line in rest]


def _span_lines(span: dict[str, Any], full: bool, depth: int = 0) -> list[str]:
    """A tracked function and, indented under it, the calls it made: name, state, duration, its error."""
    pad = "  " * depth
    took = span.get("duration_ms")
    took_text = units.duration(took / 1000.0) if took is not None else "-"
    state = "" if span.get("state") == "success" else f" [{span.get('state')}]"
    lines = [f"{pad}fn {span['name']}{state}  ({took_text})"]
    if span.get("error"):
        error = span["error"]
        kind = f"{error['type']}: " if error.get("type") else ""
        lines.extend(_indented(pad + "  ", f"error: {kind}{_error_text(error.get('message'), full)}"))
    if depth < 32:
        for child in span.get("children", []):
            lines.extend(_span_lines(child, full, depth + 1))
    return lines


def render_tree(run: dict[str, Any], *, full: bool = False, diagnoses: list[dict[str, Any]] | None = None) -> str:
    """The run's head line, then each task attempt in run order with its error, metrics, datasets and Spark apps;
    `diagnoses` (the run's diagnosis answer): a line under each attempt that failed or ran slower than its history."""
    headline = {d["attempt_id"]: d["headline"] for d in diagnoses or []}
    head = f"{run['dag_id']}  {run.get('run_id') or run.get('canonical_key')}  [{run.get('state') or 'unknown'}]"
    if run.get("logical_date"):
        head += f"  logical {units.instant(run['logical_date'])}"
    head += _span(run)
    if run.get("uid"):
        head += f"  instance {run['uid']}"
    lines = [head, f"id {run['id']}" + ("  (placeholder)" if run.get("placeholder") else "")
             + ("  (ambiguous date)" if run.get("ambiguous") else "")]
    attempts = sorted(run.get("task_attempts", []), key=_run_order)
    for index, attempt in enumerate(attempts):
        last = index == len(attempts) - 1
        branch, pad = ("└─ ", "   ") if last else ("├─ ", "│  ")
        try_text = f"try {attempt['try_number']}" if attempt.get("try_number") is not None else "try ?"
        mapped = f"[{attempt['map_index']}]" if (attempt.get("map_index") is not None
                                                  and attempt["map_index"] >= 0) else ""
        lines.append(f"{branch}{attempt['task_id']}{mapped} {try_text} [{attempt.get('state') or 'unknown'}]"
                     f"{_span(attempt)}")
        if attempt.get("id") in headline:
            text = headline[attempt["id"]]
            lines.append(f"{pad}diagnosis: {text if full else units.clip(text, DIAGNOSIS_WIDTH)}")
        if attempt.get("error"):
            error = attempt["error"]
            kind = f"{error['type']}: " if error.get("type") else ""
            lines.extend(_indented(pad, f"error: {kind}{_error_text(error.get('message'), full)}"))
        if attempt.get("metrics"):
            lines.append(pad + "metrics: " + ", ".join(f"{m['key']}={_value(m['value'])}" for m in attempt["metrics"]))
        for ds in attempt.get("datasets", []):
            rows = "" if ds.get("rows") is None else f" rows={units.number(ds['rows'])}"
            failed = " [failed]" if ds.get("success") is False else ""
            lines.append(f"{pad}dataset {ds['operation']} {ds.get('name') or ds.get('identity')}{rows}{failed}")
        for span in attempt.get("spans", []):
            lines.extend(pad + line for line in _span_lines(span, full))
        for statement in attempt.get("sql_statements", []):
            lines.extend(_indented(pad, _statement_line(statement, full)))
        for app in attempt.get("spark_apps", []):
            lines.extend(pad + line for line in _app_lines(app, full))
    for app in run.get("spark_apps", []):
        lines.extend(_app_lines(app, full))
    if run.get("metrics"):
        lines.append("metrics: " + ", ".join(f"{m['key']}={_value(m['value'])}" for m in run["metrics"]))
    return "\n".join(printable(line) for line in lines)
