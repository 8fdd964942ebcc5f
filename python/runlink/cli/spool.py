"""`runlink spool status|quarantine|requeue`: what the agents left on this machine's disk for the tracker.

Why a command: a quarantined batch (refused with a 4xx, or failing with 5xx while other batches passed) is never
replayed on its own; the person on call needs to see that it exists, why, and to put it back in line once the
cause is fixed (a token, a tracker upgrade). Agent side: works without the tracker installed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from runlink.cli.tables import print_json_or_empty
from runlink.spool import Spool, spool_key
from runlink.terminal import one_line


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "spool", help="show the local spool and its quarantined batches, requeue them",
        description="The agents' on-disk spool under $RUNLINK_HOME/spool, one folder per tracker URL: pending "
                    "batches (replayed automatically) and quarantined ones (set aside: a 4xx, or too many 5xx).")
    commands = parser.add_subparsers(dest="spool_command", metavar="SUBCOMMAND", required=True)
    status = commands.add_parser("status", help="pending and quarantined batches per tracker")
    quarantine = commands.add_parser("quarantine", help="list quarantined batches with their reasons")
    requeue = commands.add_parser("requeue", help="put quarantined batches back in line (after fixing the cause)")
    for sub in (status, quarantine, requeue):
        sub.add_argument("--home", help="state folder (default: RUNLINK_HOME, then ~/.runlink)")
    for sub in (status, quarantine):
        sub.add_argument("--json", action="store_true", help="machine-readable output")
    quarantine.add_argument("--url", help="only this tracker's spool (default: every tracker's)")
    requeue.add_argument("--url", help="tracker URL whose batches to requeue (default: RUNLINK_URL)")
    requeue.add_argument("names", nargs="*", metavar="FILE", help="quarantined file names (default: all)")
    status.set_defaults(handler=_status)
    quarantine.set_defaults(handler=_quarantine)
    requeue.set_defaults(handler=_requeue)


def _home(args: argparse.Namespace) -> Path:
    from runlink.config import default_home

    return Path(args.home).expanduser() if args.home else default_home()


def _folders(home: Path) -> list[Path]:
    base = home / "spool"
    try:
        return sorted(p for p in base.iterdir() if p.is_dir())
    except OSError:
        return []


def _summary(folder: Path) -> dict[str, Any]:
    spool = Spool(folder, 0)
    pending = spool.pending()
    quarantined = spool.quarantined()
    trackers = {q.reason.get("tracker") for q in quarantined if q.reason.get("tracker")}
    return {"folder": str(folder), "key": folder.name, "tracker": sorted(trackers)[0] if trackers else None,
            "pending_batches": len(pending), "pending_events": spool.pending_events(),
            "quarantined_batches": len(quarantined), "quarantined_events": sum(q.events for q in quarantined),
            "bytes": spool.size_bytes() + sum(_size(q.path) for q in quarantined)}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _status(args: argparse.Namespace) -> int:
    home = _home(args)
    rows = [_summary(folder) for folder in _folders(home)]
    unkeyed = Spool(home / "spool", 0)  # files of runlink versions before the per-tracker folders
    legacy = {"batches": len(unkeyed.pending()), "events": unkeyed.pending_events()}
    if args.json:
        print(json.dumps({"home": str(home), "trackers": rows, "unkeyed": legacy}, indent=2))
        return 0
    if not rows and not legacy["batches"]:
        print(f"spool {home / 'spool'}: empty")
        return 0
    print(f"{'TRACKER FOLDER':<40} {'PENDING':>16} {'QUARANTINED':>16}")
    for row in rows:
        print(f"{one_line(row['key']):<40} {row['pending_batches']:>5} ({row['pending_events']:>7} ev) "
              f"{row['quarantined_batches']:>5} ({row['quarantined_events']:>7} ev)")
    if legacy["batches"]:
        print(f"{'(no tracker: older runlink)':<40} {legacy['batches']:>5} ({legacy['events']:>7} ev)")
    if any(row["quarantined_batches"] for row in rows):
        print("quarantined batches are not replayed: `runlink spool quarantine` says why, "
              "`runlink spool requeue` puts them back")
    return 0


def _quarantine(args: argparse.Namespace) -> int:
    home = _home(args)
    folders = [home / "spool" / spool_key(args.url)] if args.url else _folders(home)
    items = []
    for folder in folders:
        for item in Spool(folder, 0).quarantined():
            items.append({"folder": folder.name, "file": item.path.name, "events": item.events,
                          "status": item.reason.get("status"), "attempts": item.reason.get("attempts"),
                          "message": item.reason.get("message"), "tracker": item.reason.get("tracker"),
                          "quarantined_at": item.reason.get("quarantined_at")})
    if print_json_or_empty(items, args.json, "no quarantined batches"):
        return 0
    for item in items:
        print(f"{one_line(item['folder'])}/{one_line(item['file'])}: {item['events']} events, "
              f"HTTP {item['status']} after {item['attempts']} server errors, at {item['quarantined_at']}: "
              f"{one_line(item['message'] or '')[:300]}")
    return 0


def _requeue(args: argparse.Namespace) -> int:
    from runlink.config import load

    url = args.url or load().url
    spool = Spool(_home(args) / "spool" / spool_key(url), 0)
    items = spool.quarantined()
    if args.names:
        wanted = set(args.names)
        missing = wanted - {q.path.name for q in items}
        if missing:
            print(f"runlink spool requeue: not quarantined for {one_line(url)}: "
                  f"{one_line(', '.join(sorted(missing)))}", file=sys.stderr)
            return 1
        items = [q for q in items if q.path.name in wanted]
    moved = sum(spool.requeue(q) for q in items)
    print(f"requeued {moved} batches ({sum(q.events for q in items)} events) for {one_line(url)}: "
          "the next runlink process replays them")
    return 0 if moved == len(items) else 1
