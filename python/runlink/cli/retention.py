"""`runlink retention`: delete DAG runs older than a window, with everything under them (tracker/retention.py),
against the tracker's database directly (the server can run it on a schedule instead: --retention-days)."""

from __future__ import annotations

import argparse

from runlink.cli.options import positive_int
from runlink.cli.server import add_database_options, tracker_settings


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("retention", help="delete runs older than N days, with everything under them")
    parser.add_argument("--keep-days", type=float, required=True, metavar="N",
                        help="keep the runs of the last N days (by logical date, else start date)")
    parser.add_argument("--dag", metavar="GLOB", help="only the runs of DAG ids matching this glob (e.g. 'etl_*')")
    parser.add_argument("--dry-run", action="store_true", help="count what would be deleted, per table; delete nothing")
    parser.add_argument("--runs-per-transaction", type=positive_int, default=None, metavar="N",
                        help="runs deleted per write transaction (ingest waits at most one; default 100)")
    parser.add_argument("--audit-all", action="store_true",
                        help="look for the deleted runs' audit copies in every stored batch, not only in those "
                             "received while they ran (slower; for events that arrived long after their run)")
    parser.add_argument("--vacuum", action="store_true",
                        help="afterwards give space back: SQLite VACUUM (blocks writers while it runs), "
                             "PostgreSQL VACUUM (ANALYZE)")
    add_database_options(parser)
    parser.set_defaults(handler=_retention)


def _retention(args: argparse.Namespace) -> int:
    from runlink.tracker.db import Database
    from runlink.tracker.retention import RUNS_PER_TRANSACTION, apply_retention, reclaim_space, retention_lease

    if args.keep_days <= 0:
        raise SystemExit("runlink retention: --keep-days must be more than 0")
    db = Database(tracker_settings(args).database_url)
    try:
        with retention_lease(db, wait=True):  # a server's scheduled pass in progress finishes first
            report = apply_retention(db, args.keep_days, args.dag, dry_run=args.dry_run,
                                     runs_per_transaction=args.runs_per_transaction or RUNS_PER_TRANSACTION,
                                     audit_all=args.audit_all)
        verb = "would delete" if args.dry_run else "deleted"
        print(f"runs before {report.cutoff}{f' of DAGs {args.dag}' if args.dag else ''}: {verb}")
        for table, count in report.deleted.items():
            if count:
                print(f"  {table:<22} {count:>12,}")
        print(f"{report.transactions} transactions in {report.seconds:.1f}s "
              f"(longest {report.longest_transaction_s * 1000:.0f} ms)")
        if not args.dry_run:
            print(reclaim_space(db, full=args.vacuum))
    finally:
        db.dispose()
    return 0
