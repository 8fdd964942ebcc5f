"""The CLI as a daily tool: `runs show` and `runs list` in human units and run order, errors cut at a word
(`--full` for all of it), `token create` refusing a home with no database, and `server` on a taken port saying so
before anything else."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from runlink.cli import main
from runlink.cli.render import render_tree
from runlink.protocol import make_event

ROOT = Path(__file__).resolve().parents[2]

LONG_ERROR = ("Job aborted due to stage failure: Task 3 in stage 7.0 failed 4 times, most recent failure: "
              "Lost task 3.3 in stage 7.0 (TID 42) (executor 1): java.lang.OutOfMemoryError: Java heap space\n"
              "\tat org.apache.spark.memory.TaskMemoryManager.allocatePage(TaskMemoryManager.java:330)")


def _tree() -> dict[str, Any]:
    """A run tree as the API answers it: `load` is first alphabetically but ran second."""
    app = {"app_id": "app-1", "name": "etl", "state": "succeeded", "start_time": "2026-11-21T01:00:00.000000Z",
           "end_time": "2026-11-21T01:00:03.331191Z", "jobs": [{"job_id": 0, "result": "succeeded"}],
           "stages": [{"status": "succeeded", "metrics": {"executor_run_time_ms": 3331, "input_bytes": 1288490189,
                                                           "shuffle_write_bytes": 2048}}],
           "queries": [{"action": "save", "success": True, "duration_ms": 3331.191565, "inputs": [],
                        "outputs": [{"path": "/data/out"}]}]}
    return {
        "id": "run-pk", "dag_id": "etl_daily", "run_id": "scheduled__2026-11-21", "state": "failed",
        "logical_date": "2026-11-21T00:00:00.000000Z", "start_date": "2026-11-21T00:59:00.123456Z",
        "end_date": "2026-11-21T01:02:05.000000Z",
        "task_attempts": [
            {"task_id": "load", "try_number": 1, "map_index": -1, "state": "failed",
             "start_date": "2026-11-21T01:01:00.000000Z", "end_date": "2026-11-21T01:02:00.000000Z",
             "duration_s": 60.0, "error": {"type": "SparkException", "message": LONG_ERROR},
             "metrics": [{"key": "rows", "value": 3331.191565}], "datasets": [], "spark_apps": []},
            {"task_id": "extract", "try_number": 1, "map_index": -1, "state": "success",
             "start_date": "2026-11-21T00:59:00.000000Z", "end_date": "2026-11-21T00:59:03.300000Z",
             "duration_s": 3.3, "metrics": [], "datasets": [], "spark_apps": [app]},
            {"task_id": "notify", "try_number": 1, "map_index": 0, "state": "upstream_failed", "start_date": None,
             "end_date": None, "metrics": [], "datasets": [], "spark_apps": []},
        ],
        "spark_apps": [], "metrics": [],
    }


def test_runs_show_lists_tasks_in_run_order_with_human_units() -> None:
    text = render_tree(_tree())
    order = [re.match(r"^[├└]─ (\w+)", line).group(1) for line in text.splitlines() if line[:1] in "├└"]
    assert order == ["extract", "load", "notify"]
    assert "extract try 1 [success]  2026-11-21 00:59:00 -> 2026-11-21 00:59:03  (3.3 s)" in text
    assert "load try 1 [failed]" in text and "(1 min 00 s)" in text
    assert "notify[0] try 1 [upstream_failed]" in text
    assert "input 1.2 GiB" in text and "shuffle write 2.0 KiB" in text and "executor run time 3.3 s" in text
    assert "query save ok 3.3 s" in text and "rows=3,331.19" in text
    assert "3331.191565" not in text and ".123456" not in text


def test_runs_show_cuts_an_error_at_a_word_and_full_prints_it_whole() -> None:
    short = render_tree(_tree())
    [line] = [row for row in short.splitlines() if "error:" in row]
    shown = line.split("error: SparkException: ", 1)[1]
    assert shown.endswith("…") and len(shown) <= 100
    assert LONG_ERROR.startswith(shown[:-1]) and LONG_ERROR[len(shown) - 1] == " ", shown  # cut between words
    full = render_tree(_tree(), full=True)
    assert "Java heap space" in full and "TaskMemoryManager.java:330" in full
    assert "│  error: SparkException: Job aborted" in full and "\n│    \tat org.apache.spark" in full


def _run_events(dag_id: str) -> list[dict[str, Any]]:
    ctx = {"dag_id": dag_id, "execution_date": "2026-11-21T00:00:00+00:00", "dag_run_id": "manual_1", "uid": "u1"}
    return [
        make_event("dag_run.start", {"state": "running", "start_date": "2026-11-21T00:00:05.123456Z"}, context=ctx,
                   agent="airflow", time="2026-11-21T00:00:05Z"),
        make_event("dag_run.end", {"state": "success", "end_date": "2026-11-21T00:02:10.654321Z"}, context=ctx,
                   agent="airflow", time="2026-11-21T00:02:10Z"),
    ]


@pytest.fixture(scope="module")
def live(tracker_factory: Any) -> Any:
    return tracker_factory()


def test_runs_list_has_a_duration_column_and_seconds(live: Any, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    dag = f"daily_{os.getpid()}"
    assert live.post_events(_run_events(dag)).status_code == 202
    monkeypatch.setenv("RUNLINK_TOKEN", live.token)
    assert main(["runs", "list", "--dag-id", dag, "--url", live.url]) == 0
    header, row = capsys.readouterr().out.strip().splitlines()
    assert "DURATION" in header.split()
    assert "2026-11-21 00:00:05" in row and "2026-11-21 00:02:10" in row and "2 min 06 s" in row, row
    assert not re.search(r"\d{2}:\d{2}:\d{2}\.\d", row), row


def test_token_create_refuses_a_home_without_a_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RUNLINK_HOME", str(tmp_path / "default"))
    typo = tmp_path / "runlnk"
    for argv in (["token", "create", "--scope", "read"], ["token", "list"], ["token", "revoke", "x"]):
        assert main([*argv, "--home", str(typo)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "no runlink database" in err[0] and "--create" in err[0], err
        assert not (typo / "runlink.db").exists()
    assert main(["token", "create", "first", "--scope", "admin", "--home", str(typo), "--create"]) == 0
    assert capsys.readouterr().out.strip()
    assert (typo / "runlink.db").is_file()
    assert main(["token", "list", "--home", str(typo)]) == 0  # exists now: no --create needed
    assert "first" in capsys.readouterr().out


def test_server_on_a_taken_port_prints_the_bind_error_and_no_banner(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "runlink", "server", "--port", str(port), "--home",
                               str(tmp_path)], capture_output=True, text=True, timeout=120, cwd=str(ROOT),
                              env={**os.environ, "RUNLINK_HOME": str(tmp_path)})
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert done.stdout == "", done.stdout
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"runlink: cannot listen on 127.0.0.1:{port}: ") and "in use" in line, line
    assert not (tmp_path / "runlink.db").exists()  # refused before touching the database
