"""PURE field-merge rules: how facts reported by several agents, in any order, become one row.

Every rule is commutative and associative, so folding the same facts in any order gives the same
row (the tracker's "any arrival order gives the same tree" rests on this):

- state: the candidate with the highest (terminal?, source rank if terminal, event time, state name);
  source rank syncer 3 > airflow 2 > others 1. A terminal state beats running, Airflow's own view
  (the syncer) wins the final state, and a late `start` never overwrites an `end`.
- `EARLIEST` fields keep the smallest value, `LATEST` fields the largest (instants are stored in one
  sortable spelling).
- `AIRFLOW_TIMES` (an attempt's or a run's start, end and duration): the highest source rank that reported a
  value wins first, then the rule above (the later event for `duration_s`). Airflow's own record, as the syncer
  reads it, is the final word on them; an agent's nearby clock reading cannot push an end later or a start
  earlier than Airflow's.
- any other field: non-null wins; between two non-null values the later event wins (time, then event id).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

TERMINAL_STATES = frozenset(
    {
        "success",
        "succeeded",
        "failed",
        "skipped",
        "upstream_failed",
        "removed",
        "up_for_retry",
        "killed",
        "cancelled",
        "canceled",
        "error",
    }
)
SOURCE_RANK = {"syncer": 3, "airflow": 2}
EARLIEST = frozenset({"start_date", "start_time", "submission_time"})
LATEST = frozenset({"end_date", "end_time", "completion_time"})
AIRFLOW_TIMES = frozenset({"start_date", "end_date", "duration_s"})


def is_terminal(state: str | None) -> bool:
    return state is not None and state.lower() in TERMINAL_STATES


def source_rank(agent: str | None) -> int:
    return SOURCE_RANK.get(agent or "", 1)


def state_key(state: str, agent: str | None, time: str, event_id: str = "") -> tuple:
    """Sort key of a state candidate: the highest wins."""
    terminal = is_terminal(state)
    return (terminal, source_rank(agent) if terminal else 0, time, state, event_id)


@dataclass(frozen=True)
class Fact:
    """What one event says about one row."""

    time: str
    event_id: str
    agent: str
    fields: Mapping[str, Any]


@dataclass
class Merged:
    """A merge in progress: for each field the winning value and why it won (its sort key)."""

    values: dict[str, tuple[tuple, Any]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {name: value for name, (_, value) in self.values.items()}


def _candidate_key(name: str, value: Any, fact: Fact) -> tuple:
    rank = source_rank(fact.agent) if name in AIRFLOW_TIMES else 0
    stamp = (fact.time, fact.event_id)
    if name == "state":
        return state_key(str(value), fact.agent, fact.time, fact.event_id)
    if name in EARLIEST or name in LATEST:
        return (rank, str(value), stamp)  # compared by value; `_better` picks the direction
    return (rank, stamp)


def _better(name: str, new: tuple, old: tuple) -> bool:
    if name in EARLIEST:
        return new[0] > old[0] or (new[0] == old[0] and new[1:] < old[1:])
    return new > old


def add(merged: Merged, fact: Fact) -> Merged:
    """Fold one fact in (mutates and returns `merged`)."""
    for name, value in fact.fields.items():
        if value is None:
            continue
        key = _candidate_key(name, value, fact)
        current = merged.values.get(name)
        if current is None or _better(name, key, current[0]):
            merged.values[name] = (key, value)
    return merged


def combine(a: Merged, b: Merged) -> Merged:
    """Merge two partial merges (commutative: combine(a, b) == combine(b, a))."""
    out = Merged(dict(a.values))
    for name, (key, value) in b.values.items():
        current = out.values.get(name)
        if current is None or _better(name, key, current[0]):
            out.values[name] = (key, value)
    return out


def fold(facts: Iterable[Fact]) -> dict[str, Any]:
    """The row that a set of facts gives, whatever their order."""
    merged = Merged()
    for fact in facts:
        add(merged, fact)
    return merged.as_dict()


def stamp(time: str, event_id: str) -> str:
    """A last-writer-wins key as text (for SQL upserts): instant, then event id to break ties."""
    return f"{time}|{event_id}"
