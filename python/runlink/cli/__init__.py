"""`runlink` command line. Each part registers its own subcommands; heavy imports happen inside handlers."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: modules exposing `register(subparsers)`; a part that is not installed (extra missing) is skipped.
COMMAND_MODULES = (
    "runlink.cli.runs",  # server, token, runs
    "runlink.cli.spark",  # spark-conf
    "runlink.cli.demo",  # demo (Airflow plugin part)
    "runlink.cli.monitor",  # monitor, airflow add|list
    "runlink.cli.alerts",  # alerts
    "runlink.cli.lineage",  # lineage pending|unlinked
    "runlink.cli.spool",  # spool status|quarantine|requeue
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="runlink", description="Airflow + Spark run tracker")
    from runlink import __version__

    parser.add_argument("--version", action="version", version=f"runlink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("runlink"):
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
