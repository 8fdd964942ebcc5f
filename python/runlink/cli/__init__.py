"""`runlink` command line: one module per command group, each exposing `register(subparsers)`.

The CLI sits above both the agent and the tracker, and runs on Spark drivers and Airflow workers where the
tracker is not installed: command modules import nothing heavy at module level, their handlers do."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from runlink.cli import airflow, alerts, demo, lineage, monitor, retention, runs, server, spark, spool, tokens
from runlink.terminal import printable

#: in the order `runlink --help` lists them
COMMAND_GROUPS = (server, tokens, retention, runs, spark, demo, airflow, monitor, alerts, lineage, spool)


def build_parser() -> argparse.ArgumentParser:
    from runlink import __version__

    parser = argparse.ArgumentParser(prog="runlink", description="Airflow + Spark run tracker")
    parser.add_argument("--version", action="version", version=f"runlink {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for group in COMMAND_GROUPS:
        group.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:  # `runlink` or `runlink GROUP` without an action
        getattr(args, "group_parser", parser).print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        message = _tracker_failure(exc)
        if message is None:
            raise
        print(f"runlink: {printable(message)}", file=sys.stderr)
        return 1


def _tracker_failure(exc: Exception) -> str | None:
    """One line for a failure to talk to the tracker (unreachable, refused, not the API); None for a bug."""
    from runlink.api_client import TrackerError

    if isinstance(exc, TrackerError):
        return str(exc)
    return None


if __name__ == "__main__":
    sys.exit(main())
