"""A DAG-run tree (the API's JSON) as readable text for `runlink runs show`, control characters escaped."""

from __future__ import annotations

from typing import Any

from runlink.terminal import printable


def _span(node: dict[str, Any], start: str = "start_date", end: str = "end_date") -> str:
    begin, finish = node.get(start), node.get(end)
    if not begin and not finish:
        return ""
    return f"  {(begin or '?')[:19]} -> {(finish or '...')[:19]}"


def _value(value: Any) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _bytes(n: int | None) -> str:
    if n is None:
        return "-"
    size = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size < 1024 or unit == "TB":
            return f"{size:.0f}{unit}" if unit == "B" else f"{size:.1f}{unit}"
        size /= 1024
    return f"{n}B"


def _app_lines(app: dict[str, Any]) -> list[str]:
    stages = app.get("stages", [])
    failed = sum(1 for s in stages if s["status"] == "failed")
    run_ms = sum((s["metrics"].get("executor_run_time_ms") or 0) for s in stages)
    state = app.get("state") or ("ended" if app.get("end_time") else "running")
    lines = [
        f"spark app {app['app_id']} {app.get('name') or ''} [{state}]{_span(app, 'start_time', 'end_time')}",
        f"  jobs {len(app.get('jobs', []))}, stages {len(stages)} ({failed} failed), executor run time {run_ms} ms, "
        f"input {_bytes(sum((s['metrics'].get('input_bytes') or 0) for s in stages))}, "
        f"shuffle write {_bytes(sum((s['metrics'].get('shuffle_write_bytes') or 0) for s in stages))}",
    ]
    for job in app.get("jobs", [])[:20]:
        lines.append(f"  job {job['job_id']} {job.get('result') or 'running'}"
                     + (f": {_value(job['failure_reason'])}" if job.get("failure_reason") else ""))
    if len(app.get("jobs", [])) > 20:
        lines.append(f"  ... {len(app['jobs']) - 20} more jobs")
    for query in app.get("queries", [])[:20]:
        ins = ", ".join(o.get("path") or o.get("table") or o.get("uri") or "?" for o in query.get("inputs", []))
        outs = ", ".join(o.get("path") or o.get("table") or o.get("uri") or "?" for o in query.get("outputs", []))
        status = "ok" if query.get("success") else "FAILED"
        lines.append(f"  query {query.get('action') or '?'} {status} {query.get('duration_ms') or '-'} ms"
                     + (f" in: {ins}" if ins else "") + (f" out: {outs}" if outs else ""))
    for stream in app.get("streaming", [])[:20]:
        lines.append(_streaming_line(stream))
    return lines


def _streaming_line(q: dict[str, Any]) -> str:
    """One streaming query run: totals, the latest interval's rates, batch duration, the failure."""
    batches = q.get("total_batches") or 0
    mean = f"{(q.get('total_batch_ms') or 0) / batches:.0f}" if batches else "-"
    rate = q.get("input_rows_per_s")
    error = q.get("error") or {}
    failure = ": ".join(p for p in (error.get("type"), error.get("message")) if p)
    return (f"  streaming {q.get('name') or q['query_id']} [{q['state']}] {batches} batches, "
            f"{q.get('total_input_rows') or 0} rows, {'-' if rate is None else f'{rate:.1f}'} rows/s, "
            f"batch {mean} ms mean / {q.get('max_batch_ms') if q.get('max_batch_ms') is not None else '-'} ms max"
            + (f": {_value(failure)}" if failure else ""))


def render_tree(run: dict[str, Any]) -> str:
    head = f"{run['dag_id']}  {run.get('run_id') or run.get('canonical_key')}  [{run.get('state') or 'unknown'}]"
    if run.get("logical_date"):
        head += f"  logical {run['logical_date'][:19]}"
    head += _span(run)
    if run.get("uid"):
        head += f"  instance {run['uid']}"
    lines = [head, f"id {run['id']}" + ("  (placeholder)" if run.get("placeholder") else "")
             + ("  (ambiguous date)" if run.get("ambiguous") else "")]
    attempts = run.get("task_attempts", [])
    for index, attempt in enumerate(attempts):
        last = index == len(attempts) - 1
        branch, pad = ("└─ ", "   ") if last else ("├─ ", "│  ")
        try_text = f"try {attempt['try_number']}" if attempt.get("try_number") is not None else "try ?"
        mapped = f"[{attempt['map_index']}]" if attempt.get("map_index", -1) >= 0 else ""
        lines.append(f"{branch}{attempt['task_id']}{mapped} {try_text} [{attempt.get('state') or 'unknown'}]"
                     f"{_span(attempt)}")
        if attempt.get("error"):
            error = attempt["error"]
            lines.append(f"{pad}error: {error.get('type') or ''} {_value(error.get('message') or '')}")
        if attempt.get("metrics"):
            lines.append(pad + "metrics: " + ", ".join(f"{m['key']}={_value(m['value'])}" for m in attempt["metrics"]))
        for ds in attempt.get("datasets", []):
            lines.append(f"{pad}dataset {ds['operation']} {ds.get('name') or ds.get('identity')} rows={ds.get('rows')}")
        for app in attempt.get("spark_apps", []):
            lines.extend(pad + line for line in _app_lines(app))
    for app in run.get("spark_apps", []):
        lines.extend(_app_lines(app))
    if run.get("metrics"):
        lines.append("metrics: " + ", ".join(f"{m['key']}={_value(m['value'])}" for m in run["metrics"]))
    return "\n".join(printable(line) for line in lines)
