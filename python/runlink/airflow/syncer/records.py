"""Airflow records -> protocol events (pure).

Ids are deterministic over the record's content (`ids.event_id(uid, kind, sha256(content))`), and the event time
comes from the record itself, never from the clock: re-sending an unchanged record is a duplicate the tracker
ignores, a changed record is a new fact. Contexts use the keys the Airflow listener sends (uid, dag_id,
dag_run_id, execution_date = logical date, task_id, try_number, map_index) so both land on one attempt.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from runlink import ids
from runlink.context import parse_logical_date
from runlink.protocol.events import make_event

AGENT = "syncer"
EPOCH = "1970-01-01T00:00:00.000000Z"


def instant(value: Any) -> str | None:
    """Any ISO-8601 spelling -> the wire spelling (None stays None, bad text is dropped)."""
    if value is None or value == "":
        return None
    try:
        moment, _day = parse_logical_date(value)
    except ValueError:
        return None
    return moment


def _latest(*values: Any) -> str:
    """The record's own time: the latest instant it carries (sortable spelling), so re-sends agree."""
    found = [v for v in (instant(x) for x in values) if v]
    return max(found) if found else EPOCH


def _digest(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


def _event(uid: str, kind: str, payload: dict[str, Any], context: dict[str, str], time: str,
           time_in_id: bool = True) -> dict[str, Any]:
    payload = {k: v for k, v in payload.items() if v is not None}
    digest = _digest(kind, context, payload, time if time_in_id else None)
    event = make_event(kind, payload, context=context, agent=AGENT, time=time,
                       event_id=ids.event_id(uid, kind, digest))
    # host/pid of the syncer say nothing about the record and would make ids-equal events differ in content
    event["source"] = {"agent": AGENT, "version": event["source"]["version"]}
    return event


def run_context(uid: str, run: dict[str, Any]) -> dict[str, str]:
    ctx = {"uid": uid, "dag_id": run["dag_id"], "dag_run_id": run["dag_run_id"]}
    logical = instant(run.get("logical_date"))
    if logical:
        ctx["execution_date"] = logical
    return ctx


def attempt_context(uid: str, ti: dict[str, Any]) -> dict[str, str]:
    ctx = run_context(uid, ti)
    ctx["task_id"] = ti["task_id"]
    ctx["try_number"] = str(ti["try_number"])
    ctx["map_index"] = str(ti["map_index"])
    return ctx


def dag_definition(uid: str, dag: dict[str, Any], tasks: list[dict[str, Any]] | None,
                   time: str | None = None) -> dict[str, Any]:
    """`tasks` None: the structure is not known here (a DAG gone from Airflow): the tracker keeps the one it has.
    `time` overrides the parse time (a DAG found gone: when it was found so)."""
    stale = dag.get("is_stale")
    payload = {
        "dag_id": dag["dag_id"],
        "description": dag.get("description"),
        "schedule": None if dag.get("schedule") is None else str(dag["schedule"])[:1000],
        "owners": list(dag.get("owners") or []),
        "tags": list(dag.get("tags") or []),
        "fileloc": dag.get("fileloc"),
        "is_paused": dag.get("is_paused"),
        "next_run_date": instant(dag.get("next_run_date")),
        "tasks": tasks,
        "is_active": None if stale is None else not stale,
    }
    # the id covers the content only (a re-parse of an unchanged file is a duplicate); the parse time orders
    # definitions, so the newest structure wins in the tracker
    time = time or _latest(dag.get("last_parsed_time"))
    # context: the uid only. With a dag_id the tracker would link it as a (run-less) placeholder run
    return _event(uid, "dag.definition", payload, {"uid": uid}, time, time_in_id=False)


def dag_run_state(uid: str, run: dict[str, Any]) -> dict[str, Any]:
    payload = {
        "state": run.get("state"),
        "start_date": instant(run.get("start_date")),
        "end_date": instant(run.get("end_date")),
        "run_type": run.get("run_type"),
        "conf": run.get("conf") if isinstance(run.get("conf"), dict) else None,
        "data_interval_start": instant(run.get("data_interval_start")),
        "data_interval_end": instant(run.get("data_interval_end")),
        "triggered_by": run.get("triggered_by"),
        "note": run.get("note"),
    }
    time = _latest(run.get("end_date"), run.get("start_date"), run.get("queued_at"), run.get("run_after"),
                   run.get("logical_date"))
    return _event(uid, "dag_run.state", payload, run_context(uid, run), time)


def task_attempt_state(uid: str, ti: dict[str, Any], operator: str | None = None) -> dict[str, Any]:
    duration = ti.get("duration")
    payload = {
        "state": ti.get("state"),
        "start_date": instant(ti.get("start_date")),
        "end_date": instant(ti.get("end_date")),
        "duration_s": float(duration) if duration is not None else None,
        "operator": operator or ti.get("operator"),
        "hostname": ti.get("hostname"),
        "pid": ti.get("pid"),
        "pool": ti.get("pool"),
        "queue": ti.get("queue"),
        "executor": ti.get("executor"),
        "max_tries": ti.get("max_tries"),
    }
    time = _latest(ti.get("end_date"), ti.get("start_date"), ti.get("queued_when"), ti.get("scheduled_when"),
                   ti.get("logical_date"))
    return _event(uid, "task_attempt.state", payload, attempt_context(uid, ti), time)


def log_tail(uid: str, ti: dict[str, Any], text: str, truncated: bool) -> dict[str, Any]:
    time = _latest(ti.get("end_date"), ti.get("start_date"))
    return _event(uid, "log", {"text": text, "position": "tail", "truncated": truncated},
                  attempt_context(uid, ti), time)
