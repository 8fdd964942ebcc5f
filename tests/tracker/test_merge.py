"""merge.py: the field rules are commutative, so any order of facts gives the same row."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from runlink.tracker import merge
from runlink.tracker.merge import Fact


def fact(time: str, agent: str = "python", event_id: str = "e", **fields) -> Fact:
    return Fact(time=time, event_id=event_id or time, agent=agent, fields=fields)


def test_terminal_beats_running_even_when_running_is_later():
    end = fact("2026-01-01T00:00:10Z", "airflow", "a", state="success")
    late_start = fact("2026-01-01T00:00:20Z", "airflow", "b", state="running")
    assert merge.fold([end, late_start])["state"] == "success"
    assert merge.fold([late_start, end])["state"] == "success"


def test_syncer_wins_the_final_state():
    airflow = fact("2026-01-01T00:00:20Z", "airflow", "a", state="success")
    syncer = fact("2026-01-01T00:00:10Z", "syncer", "b", state="failed")
    assert merge.fold([airflow, syncer])["state"] == "failed"


def test_between_non_terminal_the_later_wins():
    assert merge.fold([fact("1", state="queued"), fact("2", state="running")])["state"] == "running"


def test_start_keeps_earliest_end_keeps_latest_non_null_wins():
    a = fact("2026-01-01T00:00:01Z", event_id="a", start_date="2026-01-01T00:00:05.000000Z", hostname="w1")
    b = fact("2026-01-01T00:00:02Z", event_id="b", start_date="2026-01-01T00:00:03.000000Z", hostname=None,
             end_date="2026-01-01T00:01:00.000000Z")
    c = fact("2026-01-01T00:00:03Z", event_id="c", end_date="2026-01-01T00:00:50.000000Z", hostname="w2")
    for order in itertools.permutations([a, b, c]):
        row = merge.fold(order)
        assert row == {"start_date": "2026-01-01T00:00:03.000000Z", "end_date": "2026-01-01T00:01:00.000000Z",
                       "hostname": "w2"}


def test_later_event_wins_between_two_non_null_values():
    assert merge.fold([fact("2", event_id="x", pid=2), fact("1", event_id="y", pid=1)])["pid"] == 2


def test_is_terminal():
    assert merge.is_terminal("SUCCESS") and merge.is_terminal("up_for_retry")
    assert not merge.is_terminal("running") and not merge.is_terminal(None)


states = st.sampled_from(["queued", "running", "success", "failed", "up_for_retry", None])
agents = st.sampled_from(["python", "airflow", "syncer", "jvm"])
times = st.sampled_from(["2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z", "2026-01-01T00:00:03Z"])
values = st.one_of(st.none(), st.integers(0, 3))
facts = st.builds(
    lambda t, a, s, v, d, i: Fact(t, f"ev{i}", a, {"state": s, "pid": v, "start_date": d, "end_date": d}),
    times, agents, states, values, st.one_of(st.none(), times), st.integers(0, 10**6),
)


@given(st.lists(facts, max_size=8, unique_by=lambda f: f.event_id), st.randoms())
def test_fold_is_order_independent(items, rnd):
    shuffled = list(items)
    rnd.shuffle(shuffled)
    assert merge.fold(items) == merge.fold(shuffled)


@given(st.lists(facts, max_size=6, unique_by=lambda f: f.event_id), st.integers(0, 6))
def test_combine_of_partial_merges_equals_fold(items, cut):
    left = merge.Merged()
    right = merge.Merged()
    for f in items[:cut]:
        merge.add(left, f)
    for f in items[cut:]:
        merge.add(right, f)
    assert merge.combine(left, right).as_dict() == merge.fold(items)
    assert merge.combine(right, left).as_dict() == merge.fold(items)
