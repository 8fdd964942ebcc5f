"""Issue 14, item 5 (times equal Airflow's), focused: the plugin reported duration_s 0.43 s where Airflow's
TI.duration was 5.94 s, because it timed the attempt from its running hook (which Airflow calls after the task
process parsed the DAG file) to its own clock at the end. Now it reports Airflow's TI.start_date, TI.end_date and
end - start (Airflow's TI.duration); and in the tracker the syncer's copy of Airflow's record wins those fields,
in any arrival order, even against a plugin start that is earlier ("start keeps the earliest" no longer decides
between sources).
"""

from __future__ import annotations

import itertools
import time
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from runlink.instants import format_instant
from runlink.protocol.events import make_event
from runlink.tracker import merge

AIRFLOW_START = datetime(2026, 4, 1, 6, 0, 0, 250000, tzinfo=timezone.utc)
AIRFLOW_END = AIRFLOW_START + timedelta(seconds=5.94)


def _attempt(ti: object, since_hook_s: float) -> object:
    from runlink.airflow import listener

    attempt = listener._Attempt(("d", "r", "t", -1, 1), {}, None, ti)
    attempt.started = time.monotonic() - since_hook_s
    return attempt


@pytest.mark.airflow
def test_listener_reports_airflow_times_not_its_hooks() -> None:
    from runlink.airflow import listener

    now = datetime.now(timezone.utc)
    ti = SimpleNamespace(start_date=now - timedelta(seconds=5.94), end_date=now)
    start, end, duration = listener._attempt_times(_attempt(ti, since_hook_s=0.43))
    assert (start, end) == (ti.start_date, ti.end_date)
    assert duration == pytest.approx(5.94, abs=1e-6)


@pytest.mark.airflow
def test_listener_end_is_now_when_airflow_has_none_yet_or_an_older_tries() -> None:
    """A skip seen inside execute(): Airflow sets end_date only afterwards; a stale end_date of an earlier try
    (before this try's start) is not this try's end either."""
    from runlink.airflow import listener

    start = datetime.now(timezone.utc) - timedelta(seconds=3)
    for end_date in (None, start - timedelta(seconds=60)):
        before = datetime.now(timezone.utc)
        got_start, got_end, duration = listener._attempt_times(
            _attempt(SimpleNamespace(start_date=start, end_date=end_date), 0.2))
        assert got_start == start and before <= got_end <= datetime.now(timezone.utc)
        assert duration == pytest.approx((got_end - start).total_seconds(), abs=1e-6) and duration >= 3
    naive = SimpleNamespace(start_date=start.replace(tzinfo=None), end_date=None)  # 2.11 may hand naive UTC
    assert listener._attempt_times(_attempt(naive, 0.2))[0] == start


@pytest.mark.airflow
def test_listener_without_airflow_times_measures_its_own() -> None:
    from runlink.airflow import listener

    got_start, _end, duration = listener._attempt_times(_attempt(SimpleNamespace(), 2.0))
    assert duration == pytest.approx(2.0, abs=0.5) and got_start.tzinfo is not None


def _facts() -> list[merge.Fact]:
    """The plugin's clock readings (start earlier, end later, its short duration) and the syncer's Airflow record,
    the syncer's sent first (an older event time) so the later-event rule alone would pick the plugin's."""
    plugin_start = merge.Fact("2026-04-01T06:00:01Z", "p1", "airflow", {
        "state": "running", "start_date": "2026-04-01T06:00:00.100000Z"})
    plugin_end = merge.Fact("2026-04-01T06:00:09Z", "p2", "airflow", {
        "state": "success", "end_date": "2026-04-01T06:00:06.900000Z", "duration_s": 0.43})
    syncer = merge.Fact("2026-04-01T06:00:07Z", "s1", "syncer", {
        "state": "success", "start_date": format_instant(AIRFLOW_START), "end_date": format_instant(AIRFLOW_END),
        "duration_s": 5.94})
    return [plugin_start, plugin_end, syncer]


def test_merge_syncer_times_win_in_any_order() -> None:
    for order in itertools.permutations(_facts()):
        row = merge.fold(order)
        assert row == {"state": "success", "start_date": format_instant(AIRFLOW_START),
                       "end_date": format_instant(AIRFLOW_END), "duration_s": 5.94}


def test_merge_between_equal_sources_start_keeps_earliest_end_latest() -> None:
    a = merge.Fact("1", "a", "airflow", {"start_date": "2026-01-01T00:00:02Z", "end_date": "2026-01-01T00:00:05Z"})
    b = merge.Fact("2", "b", "airflow", {"start_date": "2026-01-01T00:00:01Z", "end_date": "2026-01-01T00:00:04Z"})
    for order in ([a, b], [b, a]):
        assert merge.fold(order) == {"start_date": "2026-01-01T00:00:01Z", "end_date": "2026-01-01T00:00:05Z"}
    jvm = merge.Fact("1", "j", "jvm", {"start_time": "2026-01-01T00:00:02Z"})
    python = merge.Fact("2", "p", "python", {"start_time": "2026-01-01T00:00:01Z"})
    assert merge.fold([jvm, python])["start_time"] == "2026-01-01T00:00:01Z"  # Spark times: no source ranks


def test_tracker_attempt_shows_airflow_times_in_any_arrival_order(tracker_factory) -> None:
    """A real tracker: the plugin's events and the syncer's snapshot of the same attempt, sent in each order, give
    an attempt with Airflow's start, end and duration."""
    tracker = tracker_factory(backend="sqlite")
    for n, order in enumerate(itertools.permutations(range(3))):
        context = {"dag_id": "times_dag", "dag_run_id": f"run_{n}", "execution_date": f"2026-04-0{1 + n}T06:00:00Z",
                   "task_id": "work", "try_number": "1", "uid": "times-airflow"}
        events = [
            make_event("task_attempt.start", {"state": "running", "start_date": "2026-04-01T06:00:00.100000Z"},
                       context=context, agent="airflow", time="2026-04-01T06:00:01.000000Z"),
            make_event("task_attempt.end", {"state": "success", "end_date": "2026-04-01T06:00:06.900000Z",
                                            "duration_s": 0.43},
                       context=context, agent="airflow", time="2026-04-01T06:00:09.000000Z"),
            make_event("task_attempt.state", {"state": "success", "start_date": format_instant(AIRFLOW_START),
                                              "end_date": format_instant(AIRFLOW_END), "duration_s": 5.94},
                       context=context, agent="syncer", time="2026-04-01T06:00:07.000000Z"),
        ]
        for index in order:
            response = tracker.post_events([events[index]])
            assert response.status_code == 202, response.text
        run = tracker.get_json("/api/v1/dag-runs", dag_id="times_dag", run_id=context["dag_run_id"])["items"]
        (attempt,) = tracker.get_json(f"/api/v1/dag-runs/{run[0]['id']}")["task_attempts"]
        assert (attempt["state"], attempt["duration_s"]) == ("success", 5.94), (order, attempt)
        got = [datetime.fromisoformat(attempt[k].replace("Z", "+00:00")) for k in ("start_date", "end_date")]
        assert got == [AIRFLOW_START, AIRFLOW_END], (order, attempt)
