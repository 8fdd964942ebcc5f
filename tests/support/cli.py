"""`runlink ...` as a user types it, against a test tracker (its URL, admin token and home in the environment);
the CLI's command tree walked parser by parser."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def runlink_cli(tracker: Any, *args: str, env: dict[str, str] | None = None, check: bool = True,
                timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the CLI in a child process; with `check`, assert it exited 0 (the message shows its output)."""
    full_env = {**os.environ, "RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": tracker.token,
                "RUNLINK_HOME": str(tracker.home), "PYTHONPATH": str(ROOT / "python"), **(env or {})}
    result = subprocess.run([sys.executable, "-m", "runlink", *args], capture_output=True, text=True,
                            env=full_env, timeout=timeout, cwd=str(ROOT))
    if check:
        assert result.returncode == 0, (args, result.stdout[-3000:], result.stderr[-3000:])
    return result


def leaf_parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...],
                                                                                         argparse.ArgumentParser]]:
    """Every parser of the command tree with its command path (the top level, groups and actions)."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_parsers(sub, (*path, name))
