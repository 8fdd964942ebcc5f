"""Issue 15's delivery scenarios, small, against a real tracker (scripts/reliability_spool.py runs them at the
issue's size and prints the figures): a poisoned batch neither blocks the spool nor is retried forever; a burst
while the tracker is down is spooled whole and the next short process's exit flush delivers it."""

from __future__ import annotations

import json
from pathlib import Path

from spool_scenarios import down_from_start, poisoned_spool


def test_a_poisoned_batch_is_quarantined_and_every_later_metric_delivered(tmp_path: Path) -> None:
    figures = poisoned_spool(tmp_path, processes=3, metrics=300)
    print("RELIABILITY poisoned_spool: " + json.dumps(figures))
    assert figures["poison_process"]["files"], figures  # the poisoned batch was spooled first
    assert [r["delivered"] for r in figures["processes"]] == [300, 300, 300], figures
    (kept,) = figures["quarantined"]
    assert kept["status"] == 500 and kept["events"] == 1, figures
    assert figures["poison_stored"] == 0 and figures["pending_files_left"] == 0, figures
    assert figures["poison_500s"] <= 2 * kept["attempts"], figures  # bounded, not retried forever


def test_tracker_down_from_the_start_then_a_short_process_delivers_everything(tmp_path: Path) -> None:
    figures = down_from_start(tmp_path, metrics=4000, seconds=1.0)
    print("RELIABILITY down_from_start: " + json.dumps(figures))
    assert figures["down_process"]["dropped"] == 0, figures
    assert figures["spooled_events_on_disk"] >= 4000, figures
    assert figures["delivered_after_short_process"] == 4000, figures
    assert figures["pending_files_left"] == 0, figures
