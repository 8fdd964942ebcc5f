"""Why a task attempt was slow or failed, against the task's own history: the duration change from the median of
its last N successful attempts, and what explains it stage by stage (stages matched by the user's call site, else
Spark's stage name, else their order): input or shuffle grown, spill appeared, skew, GC, failed tasks, lost
executors, and the time before the first Spark job (queueing, cluster start).

The answer is a plain dict (findings ranked by the seconds of the change they explain, each with its evidence)
plus a one-paragraph summary and a one-line headline that the UI, the CLI and alert messages show as they are."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from runlink import units
from runlink.instants import seconds_between
from runlink.tracker import trends
from runlink.tracker.states import FAILED, error_text
from runlink.tracker.trends import SparkWork

#: earlier successful attempts compared with
DEFAULT_HISTORY = 10
#: a figure grown by this factor (and by GROWTH_MIN_BYTES / GROWTH_MIN_RECORDS) is a cause
GROWTH = 1.5
GROWTH_MIN_BYTES = 1 << 20
GROWTH_MIN_RECORDS = 10_000
#: slowest task / median task from a stage's task distribution
SKEW = 3.0
#: from totals only: a stage whose wall time is this many times its executor time spread over its task slots ran
#: unevenly (then its skew is estimated)
UNEVEN_SPREAD = 1.3
MAX_SKEW = 1000.0
#: GC time / executor run time
GC_SHARE = 0.1
#: a stage shorter than this is not called skewed from totals (launch overhead dominates short stages)
SKEW_MIN_STAGE_S = 1.0
#: the attempt / the history's median duration: slower above, faster below the inverse
SLOWER = 1.2
#: an unexplained stage is listed when it took this share of the change
UNEXPLAINED_SHARE = 0.1
RUNNING = ("running", "queued", "scheduled", "deferred", "restarting", "up_for_reschedule", None)


def diagnose(conn: Connection, attempt_pk: str, n: int = DEFAULT_HISTORY) -> dict[str, Any] | None:
    """The attempt compared with the last `n` successful attempts of its task; None for an unknown attempt."""
    attempt = trends.attempt_row(conn, attempt_pk)
    if attempt is None:
        return None
    history = trends.earlier_successes(conn, attempt, n)
    work = trends.spark_work(conn, [attempt_pk, *(h["id"] for h in history)], distributions={attempt_pk})
    mine = work[attempt_pk]
    skewed = {stage_label(s) for s in mine.stages
              if (found := skew_of(s, mine.slots.get(s["app_pk"]))) and found["ratio"] >= SKEW}
    if skewed:  # the same stages in earlier runs: how skewed they usually are
        trends.load_distributions(conn, [s for h in history for s in work[h["id"]].stages
                                         if stage_label(s) in skewed or s.get("name") in skewed])
    return compare(attempt, history, work)


def compare(attempt: dict[str, Any], history: list[dict[str, Any]], work: dict[str, SparkWork]) -> dict[str, Any]:
    """The diagnosis from loaded rows (diagnose() loads them; alerts reuse the same rows)."""
    duration = trends.duration_of(attempt)
    past = [d for d in (trends.duration_of(h) for h in history) if d is not None]
    median = statistics.median(past) if past else None
    change = duration - median if duration is not None and median is not None else None
    mine = work.get(attempt["id"], SparkWork())
    before = [work[h["id"]] for h in history if h["id"] in work]
    findings = _stage_findings(mine, before)
    findings.extend(_run_findings(attempt, mine, history, work))
    for finding in findings:
        explained = finding["explained_s"]
        finding["share"] = (min(explained / change, 1.0) if change and change > 0 and explained else None)
    findings.sort(key=lambda f: (-(f["explained_s"] or 0), f["kind"] != "failure", f.get("order", 0)))
    findings = [f for f in findings if f["causes"] or (change and change > 0
                                                       and (f["explained_s"] or 0) >= UNEXPLAINED_SHARE * change)]
    for f in findings:
        f.pop("order", None)
    verdict = _verdict(attempt, duration, median)
    out = {
        "attempt": {k: attempt.get(k) for k in ("id", "uid", "dag_id", "task_id", "map_index", "try_number", "state",
                                               "run_id", "start_date", "end_date")},
        "duration_s": duration, "verdict": verdict,
        "history": {"attempts": len(history), "with_duration": len(past), "median_duration_s": median,
                    "attempt_ids": [h["id"] for h in history]},
        "change_s": change, "ratio": (duration / median) if duration is not None and median else None,
        "findings": findings,
    }
    out["summary"] = _summary(attempt, out)
    out["headline"] = _headline(out)
    return out


def _verdict(attempt: dict[str, Any], duration: float | None, median: float | None) -> str:
    if attempt["state"] in FAILED:
        return "failed"
    if attempt["state"] in RUNNING and not attempt.get("end_date"):
        return "running"
    if duration is None or median is None:
        return "no history"
    if median > 0 and duration >= median * SLOWER:
        return "slower"
    if duration * SLOWER <= median:
        return "faster"
    return "as usual"


# ---------------------------------------------------------------- stages

MATCHES = ("callsite", "name")
_GROWTH_FIGURES = ("input_bytes", "input_records", "shuffle_read_bytes", "shuffle_write_bytes")


def stage_keys(stages: Sequence[dict[str, Any]]) -> list[dict[str, tuple[str, int]]]:
    """Each stage's matching keys: its call site and Spark's stage name, each with its occurrence (a line that ran
    several stages is told apart by their order)."""
    seen: dict[tuple[str, str], int] = {}
    keys = []
    for stage in stages:
        mine = {}
        for how in MATCHES:
            label = stage.get(how)
            if label:
                mine[how] = (label, seen.get((how, label), 0))
                seen[(how, label)] = mine[how][1] + 1
        keys.append(mine)
    return keys


class _Index:
    """One earlier run's stages, found by call site, by name, or (same number of stages) by position."""

    def __init__(self, work: SparkWork) -> None:
        self.work = work
        self.by: dict[str, dict[tuple[str, int], dict[str, Any]]] = {how: {} for how in MATCHES}
        for stage, keys in zip(work.stages, stage_keys(work.stages), strict=True):
            for how, key in keys.items():
                self.by[how][key] = stage

    def match(self, keys: dict[str, tuple[str, int]], position: int, count: int) -> tuple[dict[str, Any], str] | None:
        for how in MATCHES:
            if how in keys and keys[how] in self.by[how]:
                return self.by[how][keys[how]], how
        if len(self.work.stages) == count:
            return self.work.stages[position], "order"
        return None


def _median_of(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


def spill_of(stage: dict[str, Any]) -> int:
    """A merged stage's spill, memory and disk."""
    return stage["figures"]["memory_spilled_bytes"] + stage["figures"]["disk_spilled_bytes"]


#: measured data skew: a task distribution's figure, the least its largest task must reach to count, its words
DATA_SKEW = (("shuffle_read_records", 1000, "shuffle records read"), ("shuffle_read_bytes", 1 << 20,
              "shuffle bytes read"), ("input_bytes", 1 << 20, "input bytes"))


def skew_of(stage: dict[str, Any], slots: int | None) -> dict[str, Any] | None:
    """The stage's skew: {ratio (largest task / median task), estimated, what}. Measured from the task distribution
    when the stage has one (task duration when its slowest task took SKEW_MIN_STAGE_S or more and is skewed, else the
    most skewed of the data a task read); else estimated from totals: when the stage's wall time is well above its
    executor time spread over its task slots, one task ran about the whole wall time and the others shared the rest."""
    distribution = trends.distribution_of(stage)
    if isinstance(distribution, dict) and distribution.get("tasks"):
        quantiles, skews = distribution.get("metrics") or {}, distribution.get("skew") or {}
        duration = quantiles.get("duration_ms") or {}
        ratio = stage.get("task_skew") if stage.get("task_skew") is not None else skews.get("duration_ms")
        timed = ratio is not None and (duration.get("max") or 0) >= SKEW_MIN_STAGE_S * 1000
        if timed and ratio >= SKEW:
            return {"ratio": float(ratio), "estimated": False, "what": "task duration"}
        data = [(float(skews[name]), words) for name, floor, words in DATA_SKEW
                if skews.get(name) is not None and ((quantiles.get(name) or {}).get("max") or 0) >= floor]
        if data:
            top, words = max(data)
            if top >= SKEW or not timed:
                return {"ratio": top, "estimated": False, "what": words}
        return {"ratio": float(ratio), "estimated": False, "what": "task duration"} if timed else None
    run_s = stage["figures"]["executor_run_time_ms"] / 1000
    tasks = stage["num_tasks"] or 0
    wall = stage["wall_s"]
    parallel = min(tasks, slots) if slots else tasks
    if run_s <= 0 or tasks < 2 or parallel < 2 or wall < SKEW_MIN_STAGE_S:
        return None
    if wall < UNEVEN_SPREAD * run_s / parallel:
        return {"ratio": 1.0, "estimated": True, "what": "task duration"}
    slowest = min(wall, run_s)
    others = (run_s - slowest) / (tasks - 1)
    return {"ratio": min(slowest / others, MAX_SKEW) if others > 0 else MAX_SKEW, "estimated": True,
            "what": "task duration"}


def skew_text(skew: dict[str, Any]) -> str:
    """`slowest task 12.0x the median task`, said as an estimate when it is one."""
    if skew["estimated"]:
        return f"slowest task about {skew['ratio']:.0f}x the others (estimated from the stage's totals)"
    if skew["what"] == "task duration":
        return f"slowest task {skew['ratio']:.1f}x the median task"
    return f"largest task {skew['ratio']:.1f}x the median task in {skew['what']}"


def stage_label(stage: dict[str, Any]) -> str:
    """How a stage is named to a person: the user's call site, else Spark's stage name, else its id."""
    return stage.get("callsite") or stage.get("name") or f"stage {stage['stage_id']}"


def _grown(figure: str, now: float, then: float, floor: float) -> dict[str, Any] | None:
    if now - then >= floor and now >= then * GROWTH:
        return {"figure": figure, "before": then, "after": now, "ratio": (now / then) if then else None}
    return None


def _stage_causes(stage: dict[str, Any], base: list[dict[str, Any]], slots: int | None,
                  base_slots: list[int | None]) -> list[dict[str, Any]]:
    """What changed in this stage against the same stage in earlier runs (medians), each with its evidence."""
    f = stage["figures"]
    med = {name: _median_of([b["figures"][name] for b in base]) for name in _GROWTH_FIGURES}
    causes = []
    if base:
        grown = (_grown("input_bytes", f["input_bytes"], med["input_bytes"], GROWTH_MIN_BYTES)
                 or _grown("input_records", f["input_records"], med["input_records"], GROWTH_MIN_RECORDS))
        if grown:
            causes.append({"cause": "input growth", **grown, "text": _growth_text("input", grown)})
        grown = (_grown("shuffle_read_bytes", f["shuffle_read_bytes"], med["shuffle_read_bytes"], GROWTH_MIN_BYTES)
                 or _grown("shuffle_write_bytes", f["shuffle_write_bytes"], med["shuffle_write_bytes"],
                           GROWTH_MIN_BYTES))
        if grown:
            causes.append({"cause": "shuffle growth", **grown, "text": _growth_text("shuffle", grown)})
    spill = spill_of(stage)
    base_spill = _median_of([spill_of(b) for b in base])
    if spill > 0 and (not base or base_spill == 0 or spill >= base_spill * 2):
        how = "appeared" if base and base_spill == 0 else ("grew" if base else "present")
        causes.append({"cause": "spill", "after": spill, "before": base_spill if base else None, "how": how,
                       "memory_spilled_bytes": f["memory_spilled_bytes"], "disk_spilled_bytes": f["disk_spilled_bytes"],
                       "text": f"spill {how}: {units.size(spill)}"
                               + (f" (was {units.size(base_spill)})" if how == "grew" else "")})
    skew = skew_of(stage, slots)
    if skew is not None and skew["ratio"] >= SKEW:
        before = [k["ratio"] for k in (skew_of(b, bs) for b, bs in zip(base, base_slots, strict=True))
                  if k is not None and k["what"] == skew["what"]]
        usual = _median_of(before) if before else None
        if usual is None or skew["ratio"] >= usual * GROWTH:
            causes.append({"cause": "skew", **skew, "usual": usual,
                           "text": "skew: " + skew_text(skew) + (f" (usually {usual:.1f}x)" if usual is not None
                                                                 else "")})
    run_ms = f["executor_run_time_ms"]
    if run_ms > 0:
        share = f["jvm_gc_time_ms"] / run_ms
        base_shares = [b["figures"]["jvm_gc_time_ms"] / b["figures"]["executor_run_time_ms"]
                       for b in base if b["figures"]["executor_run_time_ms"] > 0]
        usual_gc = _median_of(base_shares) if base_shares else None
        if share >= GC_SHARE and (usual_gc is None or share >= usual_gc * 2):
            causes.append({"cause": "gc", "share": share, "usual": usual_gc,
                           "text": f"GC {share:.0%} of executor time"
                                   + (f" (usually {usual_gc:.0%})" if usual_gc is not None else "")})
    failed_usual = _median_of([b["failed_tasks"] for b in base])
    if stage["failed_tasks"] > failed_usual or stage["failed_attempts"]:
        reason = stage.get("failure_reason") or _failed_reasons(trends.distribution_of(stage))
        causes.append({"cause": "failed tasks", "failed_tasks": stage["failed_tasks"],
                       "failed_attempts": stage["failed_attempts"], "usual": failed_usual, "reason": reason,
                       "text": f"{stage['failed_tasks']} failed task(s)"
                               + (f", {stage['failed_attempts']} failed stage attempt(s)"
                                  if stage["failed_attempts"] else "")
                               + (f": {units.clip(reason, 160)}" if reason else "")})
    return causes


def _failed_reasons(distribution: Any) -> str | None:
    """`reason x2; other x1`: the task distribution's failed-task reasons."""
    reasons = distribution.get("failed_task_reasons") if isinstance(distribution, dict) else None
    if not reasons:
        return None
    return "; ".join(f"{r.get('reason')} x{r.get('count', 1)}" for r in reasons[:3])


def _growth_text(what: str, grown: dict[str, Any]) -> str:
    bytes_ = grown["figure"].endswith("bytes")
    show = units.size if bytes_ else units.number
    ratio = f" ({grown['ratio']:.1f}x)" if grown["ratio"] else ""
    return f"{what} grew{ratio}: {show(grown['before'])} -> {show(grown['after'])}"


def _stage_findings(mine: SparkWork, before: list[SparkWork]) -> list[dict[str, Any]]:
    earlier = [_Index(w) for w in before]
    findings = []
    count = len(mine.stages)
    for order, (stage, keys) in enumerate(zip(mine.stages, stage_keys(mine.stages), strict=True)):
        base, base_slots, hows = [], [], []
        for index in earlier:
            found = index.match(keys, order, count)
            if found is not None:
                base.append(found[0])
                base_slots.append(index.work.slots.get(found[0]["app_pk"]))
                hows.append(found[1])
        how = hows[0] if hows else "none"
        causes = _stage_causes(stage, base, mine.slots.get(stage["app_pk"]), base_slots)
        usual_wall = _median_of([b["wall_s"] for b in base]) if base else None
        if not base and before:
            causes.append({"cause": "new stage", "text": "not in the earlier runs"})
        explained = stage["wall_s"] - (usual_wall or 0.0)
        findings.append({
            "kind": "stage", "order": order, "explained_s": max(explained, 0.0),
            "stage": {"callsite": stage_label(stage), "name": stage["name"], "stage_id": stage["stage_id"],
                      "app_pk": stage["app_pk"], "matched_by": how, "matched_runs": len(base),
                      "status": stage["status"], "wall_s": stage["wall_s"], "usual_wall_s": usual_wall,
                      "distribution": stage.get("distribution") is not None},
            "causes": causes,
        })
    return findings


# ---------------------------------------------------------------- the run as a whole

def _run_findings(attempt: dict[str, Any], mine: SparkWork, history: list[dict[str, Any]],
                  work: dict[str, SparkWork]) -> list[dict[str, Any]]:
    out = []
    waited = seconds_between(attempt.get("start_date"), mine.first_job_at)
    usual = [w for w in (seconds_between(h.get("start_date"), work[h["id"]].first_job_at)
                         for h in history if h["id"] in work) if w is not None]
    if waited is not None and waited >= 0:
        usual_wait = _median_of(usual) if usual else None
        extra = waited - (usual_wait or 0.0)
        causes = []
        if usual_wait is not None and extra > 0 and waited >= usual_wait * GROWTH:
            causes.append({"cause": "wait before the first job", "before": usual_wait, "after": waited,
                           "text": f"{units.duration(waited)} from the attempt's start to the first Spark job "
                                   f"(usually {units.duration(usual_wait)}): queueing or cluster start"})
        out.append({"kind": "before_first_job", "explained_s": max(extra, 0.0) if usual_wait is not None else 0.0,
                    "stage": None, "causes": causes, "order": -1})
    usual_lost = _median_of([work[h["id"]].executors_lost for h in history if h["id"] in work])
    if mine.executors_lost > usual_lost:
        out.append({"kind": "executors_lost", "explained_s": 0.0, "stage": None, "order": 10**6, "causes": [
            {"cause": "lost executors", "lost": mine.executors_lost, "usual": usual_lost, "reasons": mine.lost_reasons,
             "text": f"{mine.executors_lost} executor(s) lost"
                     + (f": {units.clip(mine.lost_reasons[0], 160)}" if mine.lost_reasons else "")}]})
    if attempt["state"] in FAILED:
        error = error_text(attempt.get("error"))
        reasons = [j["reason"] for j in mine.failed_jobs if j.get("reason")]
        text = "failed" + (f": {units.clip(error, 200)}" if error else (", no error message stored" if not reasons
                                                                          else ""))
        if reasons:
            text += f"; Spark job failed: {units.clip(reasons[0], 200)}"
        out.append({"kind": "failure", "explained_s": 0.0, "stage": None, "order": -2, "causes": [
            {"cause": "failure", "error": error, "failed_jobs": len(mine.failed_jobs), "text": text}]})
    return out


# ---------------------------------------------------------------- text

def _finding_text(finding: dict[str, Any], with_share: bool = True) -> str:
    causes = "; ".join(c["text"] for c in finding["causes"]) or "slower, no cause in the stored figures"
    if finding["kind"] == "stage":
        head = f"stage '{finding['stage']['callsite']}'"
    elif finding["kind"] == "before_first_job":
        head = "before the first Spark job"
    else:
        return causes
    extra = finding["explained_s"]
    share = f", {finding['share']:.0%} of the change" if with_share and finding.get("share") else ""
    took = f" (+{units.duration(extra)}{share})" if extra and extra > 0 else ""
    return f"{head}{took}: {causes}"


def _summary(attempt: dict[str, Any], d: dict[str, Any]) -> str:
    mapped = f"[{attempt['map_index']}]" if attempt.get("map_index", -1) >= 0 else ""
    label = f"{attempt['dag_id']}.{attempt['task_id']}{mapped}"
    history = d["history"]
    took = units.duration(d["duration_s"])
    if d["verdict"] == "running":
        head = f"{label} is still running ({took} so far)."
    elif history["median_duration_s"] is None:
        head = f"{label} took {took}; no earlier successful run to compare with."
    else:
        sign = "+" if d["change_s"] >= 0 else "-"
        head = (f"{label} took {took}, {d['ratio']:.1f}x the median {units.duration(history['median_duration_s'])} "
                f"of its last {history['with_duration']} successful run(s) ({sign}{units.duration(abs(d['change_s']))})"
                + (" and failed." if d["verdict"] == "failed" else "."))
    explained = [f for f in d["findings"] if f["causes"]][:3]
    if not explained:
        if d["verdict"] in ("slower", "failed"):
            return head + " Nothing in the stored Spark figures explains it."
        return head
    sentences = (_finding_text(f) for f in explained)
    return head + " " + " ".join(text[0].upper() + text[1:] + "." for text in sentences)


def _headline(d: dict[str, Any]) -> str:
    """One line for the CLI: the verdict, the change, the top causes with their stage."""
    if d["verdict"] == "failed":
        head = f"failed after {units.duration(d['duration_s'])}"
    elif d["ratio"] is not None and d["verdict"] in ("slower", "faster"):
        head = f"{d['verdict']} {d['ratio']:.1f}x the median of {d['history']['with_duration']} earlier run(s)"
    else:
        head = d["verdict"]
    parts = []
    for f in [f for f in d["findings"] if f["causes"]][:3]:
        causes = ", ".join(c["cause"] for c in f["causes"])
        if f["kind"] == "stage":
            parts.append(f"{causes} at {f['stage']['callsite']}")
        elif f["kind"] == "before_first_job":
            parts.append(f"{units.duration(f['explained_s'])} more before the first Spark job")
        else:
            parts.append(units.clip(f["causes"][0]["text"], 160) if f["kind"] == "failure" else causes)
    return head + (": " + "; ".join(parts) if parts else "")


# ---------------------------------------------------------------- a whole run

def run_diagnoses(conn: Connection, run_pk: str, n: int = DEFAULT_HISTORY, limit: int = 50) -> list[dict[str, Any]]:
    """The diagnosis headline of each attempt of a DAG run that failed or ran slower than its history (at most
    `limit` attempts diagnosed)."""
    out = []
    for attempt in trends.run_attempts(conn, run_pk):
        if len(out) >= limit:
            break
        if attempt["state"] not in FAILED:
            duration = trends.duration_of(attempt)
            past = [d for d in (trends.duration_of(h) for h in trends.earlier_successes(conn, attempt, n))
                    if d is not None]
            if duration is None or not past or duration < statistics.median(past) * SLOWER:
                continue
        found = diagnose(conn, attempt["id"], n)
        if found is not None:
            out.append({"attempt_id": attempt["id"], "task_id": attempt["task_id"],
                        "map_index": attempt["map_index"], "try_number": attempt["try_number"],
                        "verdict": found["verdict"], "headline": found["headline"], "summary": found["summary"]})
    return out
