"""Every `runlink` command that talks to a tracker, found by walking the parser (a new command is covered without
editing this file), run against a dead port, a URL that is not the tracker's API (its /ui, and an HTTP server that
is not runlink), a live tracker without RUNLINK_TOKEN, and a negative number for each numeric option: one line on
stderr (`runlink: ...`, or argparse's usage error for a bad value), a non-zero exit, never a traceback."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from runlink.cli import build_parser, main
from support.cli import ROOT, leaf_parsers

#: commands that contact no tracker, and why (each must still be a command of the parser)
NO_TRACKER = {
    ("server",): "it is the tracker: it opens its database, not a URL",
    ("token", "create"): "works on the tracker's database (--db/--home), not through its API",
    ("token", "list"): "works on the tracker's database (--db/--home), not through its API",
    ("token", "revoke"): "works on the tracker's database (--db/--home), not through its API",
    ("retention",): "works on the tracker's database (--db/--home), not through its API",
    ("spark-conf",): "prints a Spark driver's settings; --url only goes into them",
    ("demo",): "starts its own tracker and Spark job when none answers (tests/test_demo.py)",
    ("spool", "status"): "reads this machine's spool folders",
    ("spool", "quarantine"): "reads this machine's spool folders; --url only picks one",
    ("spool", "requeue"): "moves files of this machine's spool; --url only picks the folder",
}

#: what a command needs to make one try at the tracker alone: monitor loops without --once; airflow add asks
#: Airflow for its uid and API version (and warns when it cannot) unless told
ONE_TRY = {("monitor",): ("--once",),
           ("airflow", "add"): ("--uid", "placeholder-uid", "--api-version", "v2", "--no-auth")}

#: commands run in a child process: monitor sets up logging to stderr, which pytest's root handlers hide
#: in-process, so only a real process shows whether it prints more than one line
IN_A_PROCESS = {("monitor",)}

NUMBER_TYPES = ("int", "float", "positive_int", "seconds")


def _tracker_option(parser: argparse.ArgumentParser) -> str | None:
    """The option that names the tracker: `--url`, except where `--url` is something else (`airflow add`:
    Airflow's URL) and `--tracker` has its own destination."""
    options = {option: action for action in parser._actions for option in action.option_strings}
    tracker = options.get("--tracker")
    if tracker is not None and tracker.dest != "url":
        return "--tracker"
    return "--url" if "--url" in options else None


def _placeholders(parser: argparse.ArgumentParser, tracker_option: str) -> list[str]:
    """Values for the command's required arguments: a choice's first value, a URL for a URL, else a word."""
    argv: list[str] = []
    for action in parser._actions:
        if action.option_strings:
            if action.required and tracker_option not in action.option_strings:
                value = (str(action.choices[0]) if action.choices else
                         "http://airflow.invalid:8080" if "url" in action.dest else "placeholder")
                argv += [action.option_strings[0], value]
        elif action.nargs is None and not isinstance(action, argparse._SubParsersAction):
            argv.append("placeholder")
    return argv


def _commands() -> list[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return [(path, parser) for path, parser in leaf_parsers(build_parser())
            if parser.get_default("handler") is not None and path not in NO_TRACKER]


TRACKER_COMMANDS = [path for path, _ in _commands()]


def _command_line(path: tuple[str, ...], url: str) -> list[str]:
    parser = dict(_commands())[path]
    option = _tracker_option(parser)
    assert option is not None, f"runlink {' '.join(path)}: no --url; if it needs no tracker, say why in NO_TRACKER"
    return [*path, *_placeholders(parser, option), *ONE_TRY.get(path, ()), option, url]


def _run(path: tuple[str, ...], argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """Exit status and stderr of `runlink ARGV`, in this process or (IN_A_PROCESS) a child with this environment."""
    if path in IN_A_PROCESS:
        env = {**os.environ, "PYTHONPATH": str(ROOT / "python")}
        done = subprocess.run([sys.executable, "-m", "runlink", *argv], capture_output=True, text=True, env=env,
                              timeout=120, cwd=str(ROOT))
        return done.returncode, done.stderr
    try:
        status = main(argv)
    except SystemExit as exited:
        status = exited.code if isinstance(exited.code, int) else 1
    return status, capsys.readouterr().err


def _one_line_error(path: tuple[str, ...], argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    status, err = _run(path, argv, capsys)
    assert "Traceback" not in err, (argv, err)
    assert status not in (0, None), (argv, status, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runlink: "), (argv, err)
    return lines[0]


class _NotRunlink(BaseHTTPRequestHandler):
    """Any web server that is not a tracker: an HTML page for every path and method."""

    def _page(self) -> None:
        body = b"<html><body>It works!</body></html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _page  # noqa: N815 - http.server's method names

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - http.server's signature
        """Quiet: the test reads the CLI's stderr."""


@pytest.fixture(scope="module")
def other_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotRunlink)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(10)


def test_the_walk_finds_the_tracker_commands_and_every_skip_is_a_command() -> None:
    paths = {path for path, parser in leaf_parsers(build_parser()) if parser.get_default("handler") is not None}
    assert set(NO_TRACKER) <= paths, set(NO_TRACKER) - paths
    assert {("runs", "list"), ("alerts", "add"), ("airflow", "add"), ("monitor",)} <= set(TRACKER_COMMANDS)


@pytest.mark.parametrize("path", TRACKER_COMMANDS, ids=" ".join)
def test_a_dead_tracker(path: tuple[str, ...], dead_url: str, client_env: Path,
                        capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(path, _command_line(path, dead_url), capsys)
    assert dead_url in line and "not reachable" in line, line


@pytest.mark.parametrize("path", TRACKER_COMMANDS, ids=" ".join)
def test_the_trackers_ui_url(path: tuple[str, ...], tracker: Any, client_env: Path,
                             monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", tracker.token)
    line = _one_line_error(path, _command_line(path, tracker.url + "/ui"), capsys)
    assert "HTTP" in line or "not a runlink tracker" in line, line


@pytest.mark.parametrize("path", TRACKER_COMMANDS, ids=" ".join)
def test_a_server_that_is_not_runlink(path: tuple[str, ...], other_server: str, client_env: Path,
                                      monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", "some-token")
    line = _one_line_error(path, _command_line(path, other_server), capsys)
    assert "not a runlink tracker" in line or "HTTP" in line, line


@pytest.mark.parametrize("path", TRACKER_COMMANDS, ids=" ".join)
def test_a_missing_token(path: tuple[str, ...], tracker: Any, client_env: Path,
                         capsys: pytest.CaptureFixture[str]) -> None:
    line = _one_line_error(path, _command_line(path, tracker.url), capsys)
    assert "RUNLINK_TOKEN" in line, line


def _number_options() -> list[tuple[tuple[str, ...], str]]:
    return [(path, action.option_strings[0]) for path, parser in _commands() for action in parser._actions
            if action.option_strings and getattr(action.type, "__name__", None) in NUMBER_TYPES]


@pytest.mark.parametrize(("path", "option"), _number_options(), ids=lambda v: " ".join(v) if isinstance(v, tuple)
                         else v)
def test_a_negative_number(path: tuple[str, ...], option: str, dead_url: str, client_env: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    argv = [*_command_line(path, dead_url), option, "-1"]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2 and "Traceback" not in err, (argv, err)
    assert f"error: argument {option}" in err and err.startswith("usage: runlink "), err


def test_every_number_option_of_a_tracker_command_is_checked() -> None:
    """A number option whose type the walk does not know (a new one) would be skipped silently: fail instead."""
    numeric = [(path, action.option_strings[0]) for path, parser in _commands() for action in parser._actions
               if action.option_strings and action.type is not None and action.type is not str]
    assert numeric == _number_options(), numeric
