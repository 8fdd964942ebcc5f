"""Full fault suite with figures: runs tests/reliability (kill/restart on SQLite and PostgreSQL, slow + 500s proxy,
no disk space) at a larger scale, then the security fuzz with more examples, and prints one table.

    .venv/bin/python scripts/reliability.py [--scale 5] [--fuzz-examples 100] [--json out.json]

Figures per scenario: events sent, acknowledged (delivered or spooled by the client), lost (acknowledged but not
stored: must be 0), duplicated (must be 0); fuzz cases tried and 5xx seen (must be 0)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=5.0, help="multiplies event counts and durations")
    parser.add_argument("--fuzz-examples", type=int, default=100)
    parser.add_argument("--json", help="write all figures here")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="runlink-reliability-"))
    report, fuzz = work / "reliability.json", work / "fuzz.json"
    env = {**os.environ, "RUNLINK_RELIABILITY_SCALE": str(args.scale), "RUNLINK_RELIABILITY_REPORT": str(report),
           "RUNLINK_FUZZ_EXAMPLES": str(args.fuzz_examples), "RUNLINK_FUZZ_REPORT": str(fuzz)}
    rc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/reliability",
                         "tests/security/test_fuzz.py"], cwd=ROOT, env=env).returncode
    figures = {"reliability": json.loads(report.read_text()) if report.exists() else {},
               "fuzz": json.loads(fuzz.read_text()) if fuzz.exists() else {}}
    print(f"\n{'scenario':24s} {'sent':>8s} {'ack':>8s} {'lost':>6s} {'dup':>6s}  notes")
    for name, f in figures["reliability"].items():
        notes = {k: f[k] for k in ("dropped", "spooled", "process_wall_s", "bound_s", "proxy_500s",
                                   "stored_when_killed", "mode") if k in f}
        print(f"{name:24s} {f.get('sent', '-')!s:>8s} {f.get('acknowledged', '-')!s:>8s} "
              f"{f.get('lost', '-')!s:>6s} {f.get('duplicated', '-')!s:>6s}  {notes}")
    print(f"fuzz: {figures['fuzz']}")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return rc


if __name__ == "__main__":
    sys.exit(main())
