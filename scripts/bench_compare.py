#!/usr/bin/env python
"""The tracker's benchmarks for two revisions, side by side in one run: is a change within noise?

Each round runs every chosen benchmark once from a checkout of the base revision and once from this tree, in
alternating order, so both see the same machine load; each side runs its own copy of the benchmark script
against its own code (PYTHONPATH). Prints every round, the medians per side and the ratio this/base.

    .venv/bin/python scripts/bench_compare.py --base 893f5bc                 # ingest, tree and ui, 3 rounds
    .venv/bin/python scripts/bench_compare.py --base main~5 --benches tree --rounds 5
    .venv/bin/python scripts/bench_compare.py --base 56d2816 --benches ingest,ingest_pg   # needs PostgreSQL
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: name -> (script arguments, [(figure name, regex of one number in the output, higher is better)])
BENCHES: dict[str, tuple[list[str], list[tuple[str, str, bool]]]] = {
    "ingest": (["bench_ingest.py", "--events", "20000"], [("events/s", r"= ([\d,]+) events/s", True)]),
    "ingest_pg": (["bench_ingest.py", "--events", "50000", "--db", "postgresql+psycopg://postgres@127.0.0.1:5432/bench"],
                  [("PostgreSQL events/s", r"= ([\d,]+) events/s", True)]),
    "tree": (["bench_tree.py", "--stages", "5000", "--requests", "15"],
             [("run tree median ms", r"median (\d+) ms", False)]),
    "ui": (["bench_ui.py", "--tasks", "200", "--stages", "500", "-n", "15"],
           [("DAG run page ms", r"DAG run page, \d+ tasks\s+([\d.]+)ms", False),
            ("Spark app page ms", r"Spark app page, \d+ stages\s+([\d.]+)ms", False)]),
}


def _checkout(rev: str, into: Path) -> Path:
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(into), rev], check=True,
                   capture_output=True)
    return into


def _run(tree: Path, bench: str) -> tuple[dict[str, float], str]:
    args, figures = BENCHES[bench]
    env = {**os.environ, "PYTHONPATH": str(tree / "python")}
    done = subprocess.run([sys.executable, str(tree / "scripts" / args[0]), *args[1:]], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=1800)
    out = done.stdout + done.stderr
    found = {}
    for name, pattern, _higher in figures:
        match = re.search(pattern, out)
        if match:
            found[name] = float(match.group(1).replace(",", ""))
    return found, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the revision to compare with (a commit, tag or branch)")
    parser.add_argument("--benches", default="ingest,tree,ui", help="comma-separated: " + ", ".join(BENCHES))
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    benches = [b for b in args.benches.split(",") if b]
    unknown = [b for b in benches if b not in BENCHES]
    if unknown:
        parser.error(f"unknown bench {unknown[0]!r}: choose from {', '.join(BENCHES)}")
    with tempfile.TemporaryDirectory(prefix="runlink-bench-base-") as tmp:
        base = _checkout(args.base, Path(tmp) / "base")
        sides = {"base": base, "this": ROOT}
        results: dict[tuple[str, str, str], list[float]] = {}
        try:
            for round_n in range(args.rounds):
                order = ("base", "this") if round_n % 2 == 0 else ("this", "base")
                for bench in benches:
                    for side in order:
                        found, out = _run(sides[side], bench)
                        if not found:
                            print(f"round {round_n + 1} {bench} {side}: no figure in its output:\n{out[-2000:]}")
                            return 1
                        for name, value in found.items():
                            results.setdefault((bench, name, side), []).append(value)
                        print(f"round {round_n + 1} {bench:6} {side:4}: "
                              + ", ".join(f"{k} {v:,.1f}" for k, v in found.items())
                              + f" (load {os.getloadavg()[0]:.1f})", flush=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)], capture_output=True)
    print(f"\nmedians over {args.rounds} rounds (base = {args.base}):")
    for bench in benches:
        for name, _pattern, higher in BENCHES[bench][1]:
            a = statistics.median(results[(bench, name, "base")])
            b = statistics.median(results[(bench, name, "this")])
            better = (b >= a) if higher else (b <= a)
            print(f"  {bench:6} {name:20} base {a:10,.1f}  this {b:10,.1f}  this/base {b / a:5.2f} "
                  f"({'not worse' if better else 'worse'}; {'higher' if higher else 'lower'} is better)")
    print(f"load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
