"""The `runlink` command line as a user meets it: its shape (help, options, validation), one-line errors against
a dead tracker, a URL that is not the API root and a missing token (a real tracker), and the Spark driver's
`runlink spark-conf`, which must not import the tracker."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runlink.cli import build_parser, main
from support.cli import leaf_parsers

#: commands that talk to the tracker, with what they need besides `--url`
TRACKER_COMMANDS = (
    ("runs", "list"),
    ("runs", "show", "some_dag"),
    ("alerts", "kinds"),
    ("alerts", "rules"),
    ("alerts", "list"),
    ("alerts", "resolve", "an-alert-id"),
    ("alerts", "evaluate"),
    ("airflow", "list"),
    ("airflow", "alias", "prod", "some-uid"),
    ("lineage", "pending"),
    ("lineage", "unlinked"),
)


def one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run `runlink ARGV` in this process; assert exit 1 and a single `runlink: ...` line; return it."""
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 1, (argv, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("runlink: "), (argv, err)
    assert "Traceback" not in err, err
    return lines[0]


@pytest.fixture(scope="module")
def live(tracker_factory: Any) -> Any:
    return tracker_factory()


@pytest.mark.parametrize("group", ["runs", "alerts", "token", "lineage", "airflow"])
def test_a_bare_group_prints_its_own_help(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([group]) == 2
    out = capsys.readouterr().out
    assert out.startswith(f"usage: runlink {group} "), out
    assert "COMMAND" not in out  # not the top-level help


def test_bare_runlink_prints_the_top_level_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert capsys.readouterr().out.startswith("usage: runlink [-h]")


@pytest.mark.parametrize(("argv", "message"), [
    (["runs", "list", "--limit", "-1"], "argument --limit: must be 1 or more, got -1"),
    (["runs", "list", "--limit", "0"], "argument --limit: must be 1 or more, got 0"),
    (["runs", "list", "--limit", "ten"], "argument --limit: expected a whole number, got 'ten'"),
    (["runs", "list", "--state", "bogus"], "argument --state: invalid choice: 'bogus'"),
    (["lineage", "pending", "--limit", "-5"], "argument --limit: must be 1 or more, got -5"),
    (["alerts", "list", "--state", "closed"], "argument --state: invalid choice: 'closed'"),
])
def test_bad_option_values_are_refused_by_the_parser(argv: list[str], message: str,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_every_option_and_action_has_help_text() -> None:
    missing = []
    for path, parser in leaf_parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._VersionAction)) or action.help == argparse.SUPPRESS:
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{' '.join(path)} {c.dest}" for c in action._choices_actions if not c.help]
            elif not action.help:
                missing.append(f"{' '.join(path)} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, missing


def test_every_tracker_command_takes_url_and_the_old_tracker_option_stays_hidden() -> None:
    parsers = dict(leaf_parsers(build_parser()))
    for argv in TRACKER_COMMANDS + (("monitor",), ("spark-conf",), ("demo",)):
        args = build_parser().parse_args([*argv, "--url", "http://tracker.example:8686"])
        assert args.url == "http://tracker.example:8686", argv
    for path in (("airflow", "list"), ("airflow", "alias"), ("monitor",)):
        extra = ["prod", "uid"] if path == ("airflow", "alias") else []
        args = build_parser().parse_args([*path, *extra, "--tracker", "http://old.example:8686"])
        assert args.url == "http://old.example:8686", path
        assert "--tracker" not in parsers[path].format_help(), path
    # `airflow add --url` is Airflow's URL: the tracker's stays `--tracker` there, documented
    add = build_parser().parse_args(["airflow", "add", "prod", "--url", "http://airflow:8080", "--tracker", "http://t"])
    assert (add.url, add.tracker_url) == ("http://airflow:8080", "http://t")


@pytest.mark.parametrize("argv", TRACKER_COMMANDS, ids=" ".join)
def test_a_dead_tracker_is_one_line(argv: tuple[str, ...], dead_url: str, client_env: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, [*argv, "--url", dead_url])
    assert f"not reachable at {dead_url}" in line


def test_monitor_once_with_a_dead_tracker_is_one_line(dead_url: str, client_env: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    env = {**os.environ, "RUNLINK_HOME": str(client_env)}
    done = subprocess.run([sys.executable, "-m", "runlink", "monitor", "--once", "--url", dead_url],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("runlink: "), done.stderr


@pytest.mark.parametrize("argv", TRACKER_COMMANDS, ids=" ".join)
def test_a_url_that_is_not_the_api_root_is_one_line(argv: tuple[str, ...], live: Any, client_env: Path,
                                                    monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", live.token)
    line = one_line_error(capsys, [*argv, "--url", live.url + "/ui"])
    assert "HTTP" in line or "not a runlink tracker" in line


@pytest.mark.parametrize("argv", TRACKER_COMMANDS, ids=" ".join)
def test_a_missing_token_names_runlink_token(argv: tuple[str, ...], live: Any, client_env: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    line = one_line_error(capsys, [*argv, "--url", live.url])
    assert "RUNLINK_TOKEN" in line and "HTTP 401" in line


def test_with_a_token_the_same_commands_work(live: Any, client_env: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", live.token)
    assert main(["runs", "list", "--json", "--url", live.url]) == 0
    assert isinstance(json.loads(capsys.readouterr().out), list)
    assert main(["alerts", "kinds", "--url", live.url]) == 0
    assert "task_failed" in capsys.readouterr().out


def test_spark_conf_imports_no_tracker_code(tmp_path: Path) -> None:
    """On a Spark driver only the agent is installed: `runlink spark-conf` must not reach FastAPI or SQLAlchemy."""
    probe = (
        "import sys\n"
        "from runlink.cli import main\n"
        "main(['spark-conf', '--format', 'json', '--url', 'http://tracker.example:8686'])\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'sqlalchemy', 'uvicorn', "
        "'starlette', 'alembic') or m.startswith('runlink.tracker'))\n"
        "print('HEAVY', heavy, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "RUNLINK_HOME": str(tmp_path)})
    assert "HEAVY [" in done.stderr, done.stderr
    assert "HEAVY []" in done.stderr, done.stderr


def test_a_refused_request_is_one_line(live: Any, client_env: Path, monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", live.token)
    line = one_line_error(capsys, ["alerts", "add", "slow", "--kind", "duration", "--param", "max_s=soon",
                                   "--url", live.url])
    assert "HTTP 422" in line and "max_s" in line and "{" not in line, line


def test_airflow_add_alias_list_through_the_api_client(live: Any, client_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_TOKEN", live.token)
    name = f"cli_{os.getpid()}"
    assert main(["airflow", "add", name, "--url", "http://airflow.invalid:8080", "--uid", f"{name}-uid",
                 "--api-version", "v2", "--no-auth", "--tracker", live.url]) == 0
    assert f"registered {name} (uid {name}-uid: pinned" in capsys.readouterr().out
    assert main(["airflow", "alias", name, f"{name}-old", "--url", live.url]) == 0
    assert f"aliases {name}-old" in capsys.readouterr().out
    assert main(["airflow", "list", "--json", "--tracker", live.url]) == 0
    [mine] = [i for i in json.loads(capsys.readouterr().out) if i["name"] == name]
    assert mine["uid"] == f"{name}-uid" and mine["aliases"] == [f"{name}-old"]


def test_the_demo_probes_a_tracker_through_the_api_client(live: Any, dead_url: str) -> None:
    from runlink.cli import demo

    assert demo._healthy(live.url) and not demo._healthy(dead_url)
    assert not demo._open_reads(live.url)  # this tracker wants a token for reads
    reused = demo._Tracker(live.url, live.token, open_reads=False, process=None)
    assert demo._tree(reused, "no-such-run") is None
    assert demo._tree(demo._Tracker(dead_url, None, open_reads=False, process=None), "any") is None
