"""Argparse pieces every command group shares, so each option is spelled and checked one way: the tracker URL
option (and the API client it names), counts that must be positive, seconds that must not be negative, and a
group that answers a bare `runlink GROUP` with its own help."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from runlink.api_client import TrackerClient

URL_HELP = "tracker URL (default: RUNLINK_URL, then http://127.0.0.1:8686)"


def add_url_option(parser: argparse.ArgumentParser, *, legacy_tracker: bool = False,
                   help_text: str = URL_HELP) -> None:
    """`--url` for the tracker; `legacy_tracker` keeps the older spelling `--tracker` working, hidden from help."""
    parser.add_argument("--url", dest="url", help=help_text)
    if legacy_tracker:
        parser.add_argument("--tracker", dest="url", help=argparse.SUPPRESS)


def tracker_client(url: str | None) -> TrackerClient:
    """The API client of the tracker `--url` names (else the configured one); no retries: a person is waiting."""
    from runlink.api_client import TrackerClient

    return TrackerClient.configured(url, retries=0)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a limit of 0 or -1 is a typo, not a request)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def seconds(text: str) -> float:
    """An argparse type: a number of seconds, 0 or more (a negative interval or overlap is a typo)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {text}")
    return value


def add_group(subparsers: argparse._SubParsersAction, name: str, help_text: str,
              **kwargs: object) -> argparse._SubParsersAction:
    """A command group (`runlink runs ...`): its actions' subparsers; the bare group prints the group's help."""
    group = subparsers.add_parser(name, help=help_text, **kwargs)
    group.set_defaults(group_parser=group)
    return group.add_subparsers(dest=f"{name.replace('-', '_')}_command", metavar="ACTION")
