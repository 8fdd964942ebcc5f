"""`runlink monitor`: the syncer, which copies Airflow instances' DAGs, runs and task tries into the tracker."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from runlink.cli.options import add_url_option, seconds


def register(subparsers: argparse._SubParsersAction) -> None:
    monitor = subparsers.add_parser("monitor", help="sync Airflow instances (DAGs, runs, task tries) into the tracker")
    monitor.add_argument("--instance", action="append", default=[], metavar="NAME",
                         help="an instance to serve (repeatable; default: every registered instance)")
    monitor.add_argument("--once", action="store_true", help="one cycle, then exit (status 1 if any failed)")
    monitor.add_argument("--interval", type=seconds, default=60.0, help="seconds between cycles (default 60)")
    monitor.add_argument("--since", help="backfill: sync everything updated since DATE (first cycle)")
    monitor.add_argument("--logs", action="store_true", help="also send log tails of finished tries")
    monitor.add_argument("--overlap", type=seconds, help="seconds re-read before the watermark (default 120)")
    monitor.add_argument("--no-progress", action="store_true", help="no progress bar during a backfill")
    monitor.add_argument("--json", action="store_true", help="print each cycle's result as a JSON line")
    add_url_option(monitor, legacy_tracker=True)
    monitor.set_defaults(handler=_monitor)


def _monitor(args: argparse.Namespace) -> int:
    from runlink.airflow.monitor import Monitor
    from runlink.config import load

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    monitor = Monitor(load(url=args.url), args.instance, since=args.since, logs=args.logs,
                      progress=bool(args.since) and not args.no_progress,
                      overlap_s=args.overlap)
    try:
        if args.once:
            results = monitor.cycle()
            for result in results:
                if args.json:
                    print(json.dumps(result.as_dict()), flush=True)
                else:
                    from runlink.airflow.monitor import _summary

                    print(_summary(result), flush=True)
            return 0 if results and all(r.ok for r in results) else 1
        import signal

        signal.signal(signal.SIGTERM, lambda *_: monitor.stop())
        monitor.run(args.interval)
        return 0
    finally:
        monitor.close()
