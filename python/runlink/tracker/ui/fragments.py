"""Hot HTML fragments rendered in Python: the Spark timeline bars and the stage table rows.

A 2,000-stage app makes ~4,000 elements with ~20 formatted values each; Jinja loops with filter and macro calls
cost ~0.3 ms per row, f-strings with a local `escape` ~0.03 ms. The output is the same markup the templates
would write (all text is escaped here; the result is wrapped in Markup)."""

from __future__ import annotations

from html import escape
from typing import Any

from markupsafe import Markup

from runlink.tracker.ui.formatting import fmt_bytes, fmt_duration, fmt_num, stage_label, state_class


def timeline_bars(app: dict[str, Any], left: float, scale: float, top_jobs: float, job_h: int, top_stages: float,
                  stage_h: int) -> Markup:
    dur, size = fmt_duration, fmt_bytes  # locals: looked up once per element below
    slowest = app["analysis"]["slowest_stage"]
    out: list[str] = []
    for j in app["jobs"]:
        width = max((j["x1"] - j["x0"]) * scale, 1.0)
        stages = ", ".join(str(s) for s in (j.get("stage_ids") or []))
        desc = f"&#10;{escape((j.get('description') or '')[:120])}" if j.get("description") else ""
        result = j.get("result") or "running"
        out.append(f'<rect class="job-bar r-{escape(result)}" x="{left + j["x0"] * scale:.2f}" '
                   f'y="{top_jobs + j["lane"] * (job_h + 2)}" width="{width:.2f}" height="{job_h}" '
                   f'data-tip="Job {j["job_id"]} · {escape(result)} · {dur(j["duration_s"])}'
                   f'&#10;stages {stages}{desc}"/>')
    for s in app["stages"]:
        key = f'{s["stage_id"]}.{s["attempt_id"]}'
        label = stage_label(s["stage_id"], s["attempt_id"])
        m = s["metrics"]
        cls = "stage-bar s-" + escape(s["status"])
        if s["flags"] and s["status"] != "failed":
            cls += " flagged"
        if key == slowest:
            cls += " slowest"
        extra = ""
        if s["gc_ratio"]:
            extra += f" · GC {100 * s['gc_ratio']:.0f}%"
        if s["spill_bytes"]:
            extra += f" · spill {size(s['spill_bytes'])}"
        flags = f"&#10;⚑ {escape(', '.join(s['flags']))}" if s["flags"] else ""
        width = max((s["x1"] - s["x0"]) * scale, 1.0)
        out.append(f'<rect class="{cls}" data-stage="{s["stage_id"]}-{s["attempt_id"]}" '
                   f'x="{left + s["x0"] * scale:.2f}" y="{top_stages + s["lane"] * (stage_h + 2)}" '
                   f'width="{width:.2f}" height="{stage_h}" data-tip="Stage {label} · {escape(s["status"])} · '
                   f'{dur(s["duration_s"])}&#10;{escape((s.get("name") or "")[:90])}&#10;{s.get("num_tasks")} tasks · '
                   f'run {dur((m.get("executor_run_time_ms") or 0) / 1000)}{extra}{flags}"/>')
    return Markup("\n".join(out))


def _bytes_cell(size, value: Any, records: Any = None) -> str:  # noqa: ANN001
    rec = f'<div class="muted small">{records:,} rec</div>' if records else ""
    return f'<td class="n" data-v="{value or 0}">{size(value)}{rec}</td>'


def _skew_cell(dur, stage: dict[str, Any]) -> str:  # noqa: ANN001
    """Max / median task duration from the listener's distribution; the two durations in the tooltip."""
    skew = stage.get("task_skew")
    d = ((stage.get("distribution") or {}).get("metrics") or {}).get("duration_ms")
    if skew is None or not d:
        return '<td class="n" data-v="0">–</td>'
    tip = f'median task {dur(d["p50"] / 1000)}, slowest {dur(d["max"] / 1000)}'
    return f'<td class="n" data-v="{skew}" title="{tip}">{skew:.1f}×</td>'


def stage_rows(app: dict[str, Any]) -> Markup:
    dur, size, num, stc = fmt_duration, fmt_bytes, fmt_num, state_class  # locals: once per row below
    slowest = app["analysis"]["slowest_stage"]
    app_pk = escape(app["id"])
    out: list[str] = []
    for s in app["stages"]:
        m = s["metrics"]
        key = f'{s["stage_id"]}.{s["attempt_id"]}'
        label = stage_label(s["stage_id"], s["attempt_id"])
        row_class = "hl" if key == slowest else ("failed" if s["status"] == "failed" else "")
        name = escape(s.get("name") or "")
        where = escape(s["callsite"]) if s.get("callsite") else name  # the user's line, else Spark's name
        status = escape(s["status"])
        failed = f' <span class="err">({s["failed_tasks"]} failed)</span>' if s.get("failed_tasks") else ""
        duration = s["duration_s"]
        run_ms = m.get("executor_run_time_ms") or 0
        cpu_ns = m.get("executor_cpu_time_ns") or 0
        gc = f"{100 * s['gc_ratio']:.0f}%" if s["gc_ratio"] is not None else "–"
        flags = '<span class="flag slowest">slowest</span>' if key == slowest else ""
        flags += "".join(f'<span class="flag {escape(f.replace(" ", "-"))}">{escape(f)}</span>' for f in s["flags"])
        spill = s["spill_bytes"]
        out.append(
            f'<tr id="stage-{s["stage_id"]}-{s["attempt_id"]}" class="{row_class}">'
            f'<td class="n" data-v="{s["stage_id"] + s["attempt_id"] / 100}">'
            f'<a href="/ui/spark-apps/{app_pk}/stages/{s["stage_id"]}/{s["attempt_id"]}">{label}</a></td>'
            f'<td class="small trunc" title="{name}">{where}</td>'
            f'<td><span class="badge {stc(s["status"])}">{status}</span></td>'
            f'<td class="n" data-v="{s.get("num_tasks") or 0}">{num(s.get("num_tasks"))}{failed}</td>'
            f'<td class="n" data-v="{"" if duration is None else duration}">{dur(duration)}</td>'
            + _skew_cell(dur, s)
            + f'<td class="n" data-v="{run_ms}">{dur(run_ms / 1000)}</td>'
            f'<td class="n" data-v="{cpu_ns}">{dur(cpu_ns / 1e9)}</td>'
            f'<td class="n" data-v="{s["gc_ratio"] or 0}">{gc}</td>'
            + _bytes_cell(size, m.get("input_bytes"), m.get("input_records"))
            + _bytes_cell(size, m.get("output_bytes"), m.get("output_records"))
            + _bytes_cell(size, m.get("shuffle_read_bytes"))
            + _bytes_cell(size, m.get("shuffle_write_bytes"))
            + f'<td class="n" data-v="{spill}">{size(spill) if spill else "–"}</td>'
            + _bytes_cell(size, m.get("peak_execution_memory_bytes"))
            + f'<td data-v="{len(s["flags"])}">{flags}</td></tr>'
        )
    return Markup("\n".join(out))
