"""Issue 15's delivery figures against a real tracker (SQLite), with real child processes using the SDK:

    .venv/bin/python scripts/reliability_spool.py [--processes 3] [--metrics 1000] [--burst 20000] [--seconds 2]
                                                  [--flush-timeout 5] [--json out.json]

(a) poisoned spool: a batch the tracker answers 500 to (a proxy in front of it fails that batch) is spooled by a
    first process, then --processes processes log --metrics metrics each: delivered (must be all), the poisoned
    batch quarantined (status, counted rounds), spool files left (must be 0).
(b) tracker down from the start: one process logs --burst metrics in --seconds s (spooled, dropped), the tracker
    starts, a short process logs one metric and exits: metrics stored when it has exited (replayed by its exit
    flush within RUNLINK_FLUSH_TIMEOUT = --flush-timeout), spool files left.
The same scenarios run small and asserted in tests/reliability/test_poisoned_spool.py."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # support.* (as under pytest)
sys.path.insert(0, str(ROOT / "tests" / "reliability"))  # its own helpers, imported by name as pytest does
sys.path.insert(0, str(ROOT / "python"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=3)
    parser.add_argument("--metrics", type=int, default=1000)
    parser.add_argument("--burst", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--flush-timeout", type=float, default=5.0, help="RUNLINK_FLUSH_TIMEOUT of the processes")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    from spool_scenarios import down_from_start, poisoned_spool

    work = Path(tempfile.mkdtemp(prefix="runlink-spool-"))
    poisoned = poisoned_spool(work / "a", args.processes, args.metrics, args.flush_timeout)
    down = down_from_start(work / "b", args.burst, args.seconds, args.flush_timeout)
    figures = {"poisoned_spool": poisoned, "down_from_start": down}
    print("(a) poisoned spool: " + ", ".join(f"process {n + 1}: {r['delivered']}/{args.metrics} delivered"
                                             for n, r in enumerate(poisoned["processes"])))
    print(f"    total {poisoned['delivered']}/{poisoned['expected']}; poisoned batch answered 500 "
          f"{poisoned['poison_500s']} times, quarantined: {poisoned['quarantined']}; "
          f"spool files left: {poisoned['pending_files_left']}")
    print(f"(b) down from the start: {args.burst} metrics emitted in {down['emit_s']:.2f}s -> "
          f"spooled {down['down_process']['spooled']} (agent_health included), "
          f"dropped {down['down_process']['dropped']}")
    print(f"    tracker up; a short process (1 metric, flush bound {args.flush_timeout:g}s) ran "
          f"{down['short_process']['wall_s']}s: {down['delivered_after_short_process']}/{args.burst} stored when "
          f"it exited; spool files left: {down['pending_files_left']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    ok = (poisoned["delivered"] == poisoned["expected"] and len(poisoned["quarantined"]) == 1
          and poisoned["pending_files_left"] == 0 and down["down_process"]["dropped"] == 0
          and down["delivered_after_short_process"] == args.burst)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
