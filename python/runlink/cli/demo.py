"""`runlink demo`: a real Airflow DAG with real Spark jobs, reported to the embedded tracker.

What it does, so that a first-time user needs nothing but `pip install runlink[server,spark,airflow]`:

1. the tracker: reuses one that answers at the URL (and accepts our token), else starts `runlink server --open`
   (SQLite under `$RUNLINK_HOME`, reads need no token: a local single-user tracker);
2. Airflow: a private AIRFLOW_HOME under `$RUNLINK_HOME/demo-airflow` (its own SQLite metadata DB; the user's
   `AIRFLOW_*` settings are ignored so their own Airflow is never touched), then `dag.test()` of
   `runlink/airflow/example_dags/runlink_demo.py` in a fresh interpreter;
3. waits (bounded) until the tracker has the whole tree, prints it, and says where to look;
4. then, for a tracker it started: keeps serving the UI until Ctrl-C when run from a terminal
   (`--keep-serving` / `--no-keep-serving` override), stops it otherwise, or leaves it running (`--detach`).
   A tracker it did not start is never stopped. The data stays in `$RUNLINK_HOME`: `runlink server` serves it again.

Exit status 0 when the DAG ran and its whole tree reached the tracker, although the DAG run fails: its task
`fails` fails on purpose. Heavy imports (Airflow, requests) happen inside the handler; `runlink --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from runlink.api_client import TrackerClient

DEMO_DAG_ID = "runlink_demo"
DEMO_TASKS = ("spark_submit", "bash_spark_submit", "session_in_task", "fails")
SPARK_TASKS = DEMO_TASKS[:3]
FAILING_TASK = "fails"
#: environment the demo's Airflow must not inherit: it would point Airflow (or Spark) at the user's own set-up
_SCRUBBED_PREFIXES = ("AIRFLOW_", "AIRFLOW__", "RUNLINK_AIRFLOW_", "SPARK_HOME", "SPARK_CONF_DIR",
                      "SPARK_DIST_CLASSPATH", "PYSPARK_", "OPENLINEAGE_")


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the example DAG (Airflow + Spark) against the embedded tracker and show its run tree",
        description="Runs runlink's example DAG (SparkSubmitOperator, a BashOperator running spark-submit, a @task "
                    "with a SparkSession and log_metric, a task that fails on purpose) with Airflow's dag.test() "
                    "against a local tracker, then prints the run tree and where to look at it.",
    )
    demo.add_argument("--url", help="tracker URL (default RUNLINK_URL or http://127.0.0.1:8686)")
    demo.add_argument("--home", help="state folder (default $RUNLINK_HOME or ~/.runlink)")
    serving = demo.add_mutually_exclusive_group()
    serving.add_argument("--keep-serving", action=argparse.BooleanOptionalAction, default=None,
                         help="after the demo, keep serving the UI until Ctrl-C (default: yes in a terminal, "
                              "no otherwise: the tracker the demo started is stopped)")
    serving.add_argument("--detach", action="store_true",
                         help="leave the tracker the demo started running in the background")
    serving.add_argument("--stop", action="store_true", help=argparse.SUPPRESS)  # = --no-keep-serving
    demo.add_argument("--browser", action="store_true", help="open the run's page in a web browser")
    demo.add_argument("--timeout", type=float, default=900.0, help="seconds the whole demo may take")
    demo.set_defaults(handler=_demo)


def _say(text: str) -> None:
    print(f"runlink demo: {text}", flush=True)


@dataclass
class _Tracker:
    url: str
    token: str | None
    open_reads: bool
    process: subprocess.Popen | None  # None: a tracker the demo did not start
    log_path: Path | None = None


def _client(url: str, token: str | None, timeout: float = 10) -> TrackerClient:
    """A client that asks once: the demo polls on its own deadline."""
    from runlink.api_client import TrackerClient

    return TrackerClient(url, token, timeout_s=timeout, retries=0)


def _healthy(url: str) -> bool:
    from runlink.api_client import TrackerError

    try:
        with _client(url, None, timeout=2) as api:
            body = api.get("/healthz")
    except TrackerError:
        return False
    return isinstance(body, dict) and body.get("status") == "ok"


def _open_reads(url: str) -> bool:
    """Whether reads need no token (a tracker started with --open): then the UI needs no login."""
    from runlink.api_client import TrackerError

    try:
        with _client(url, None) as api:
            api.get("/api/v1/dag-runs", limit=1)
    except TrackerError:
        return False
    return True


def _server_python() -> str:
    """The interpreter that runs the embedded tracker: this one, unless RUNLINK_SERVER_PYTHON names another
    (Airflow 2.11 pins SQLAlchemy 1.4, the tracker needs 2.x: the tracker then lives in another virtualenv)."""
    return os.environ.get("RUNLINK_SERVER_PYTHON") or sys.executable


def _start_tracker(url: str, home: Path, deadline: float) -> _Tracker:
    """Reuse a tracker that answers at `url` and accepts our token, else start `runlink server --open` there."""
    from urllib.parse import urlparse

    from runlink import config
    from runlink.api_client import TrackerError

    if _healthy(url):
        token = config.env_value("RUNLINK_TOKEN") or config.read_token_file(home)
        try:
            with _client(url, token) as api:
                api.get("/api/v1/dag-runs", limit=1)
        except TrackerError as exc:
            if exc.status in (401, 403):
                raise SystemExit(f"runlink demo: a tracker runs at {url} but does not accept the token of {home} "
                                 f"(HTTP {exc.status}); set RUNLINK_TOKEN, or use another port: "
                                 "--url http://127.0.0.1:PORT") from None
        _say(f"using the tracker already running at {url}")
        return _Tracker(url, token, _open_reads(url), None)
    parsed = urlparse(url)
    if parsed.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise SystemExit(f"runlink demo: no tracker answers at {url}, and the demo only starts one on this "
                         "machine (127.0.0.1 or localhost)")
    from runlink.tracker.process import TrackerProcess, TrackerStartError

    port = parsed.port or 8686
    # a session of its own: Ctrl-C in the terminal reaches the demo, which then stops the tracker itself
    server = TrackerProcess(home, python=_server_python(), host=parsed.hostname, port=port, open_reads=True,
                            log_path=home / "demo-tracker.log", new_session=True,
                            start_deadline_s=max(1.0, deadline - time.monotonic()))
    try:
        server.start()
    except TrackerStartError:
        log_path = server.log_path
        if server.process is None or time.monotonic() >= deadline:  # no answer in time (it was stopped)
            raise SystemExit(f"runlink demo: the tracker did not start in time; see {log_path}") from None
        hint = (f"; port {port} is taken: pass --url http://127.0.0.1:OTHER_PORT"
                if "address already in use" in server.log().lower() else "")
        raise SystemExit(f"runlink demo: the tracker exited ({server.process.returncode}){hint}; see {log_path}") \
            from None
    process = server.process
    assert process is not None
    (home / "demo-tracker.pid").write_text(f"{process.pid}\n")
    _say(f"started the tracker at {url} (SQLite in {home}, pid {process.pid}, log {server.log_path})")
    return _Tracker(url, config.read_token_file(home), True, process, server.log_path)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


def _airflow_env(home: Path, airflow_home: Path, dags: Path, tracker: _Tracker) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    bin_dir = str(Path(sys.executable).parent)
    env.update({
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW_CONN_RUNLINK_DEMO_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "RUNLINK_URL": tracker.url,
        "RUNLINK_HOME": str(home),
        "RUNLINK_DEMO_OUT": str(home / "demo-out"),
        # show what the opt-in captures look like in the UI
        "RUNLINK_AIRFLOW_CAPTURE_LOGS": "true",
        "RUNLINK_AIRFLOW_CAPTURE_SOURCE": "true",
        # dag.test() runs the tasks in one process that delivers at its exit: give it time on a busy machine
        "RUNLINK_FLUSH_TIMEOUT": os.environ.get("RUNLINK_FLUSH_TIMEOUT", "30"),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    })
    if tracker.token:
        env["RUNLINK_TOKEN"] = tracker.token
    else:
        env.pop("RUNLINK_TOKEN", None)
    return env


def _migrate(env: dict[str, str], airflow_home: Path, deadline: float) -> bool:
    """`airflow db migrate` once per Airflow version (a stamp file skips it on later demos)."""
    import airflow

    stamp = airflow_home / ".runlink-demo-migrated"
    if stamp.is_file() and stamp.read_text().strip() == airflow.__version__ and (airflow_home / "airflow.db").is_file():
        return True
    _say(f"preparing Airflow's own metadata database in {airflow_home} (once)")
    result = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                            text=True, timeout=max(10.0, deadline - time.monotonic()))
    if result.returncode != 0:
        print(result.stdout[-3000:], result.stderr[-3000:], file=sys.stderr)
        _say("`airflow db migrate` failed (output above)")
        return False
    stamp.write_text(airflow.__version__ + "\n")
    return True


_RUNNER = """
import importlib.util, json, sys
dag_file, result_file = sys.argv[1], sys.argv[2]
spec = importlib.util.spec_from_file_location("runlink_demo", dag_file)
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.dag.test()
with open(result_file, "w") as handle:
    json.dump({"run_id": run.run_id, "state": str(getattr(run.state, "value", run.state))}, handle)
"""


def _run_dag(env: dict[str, str], dags: Path, airflow_home: Path, deadline: float) -> dict | None:
    """dag.test() in a fresh interpreter (what a worker does); its whole output goes to dag-test.log."""
    log_path = airflow_home / "dag-test.log"
    result_path = airflow_home / "dag-test.result.json"
    result_path.unlink(missing_ok=True)
    with open(log_path, "w") as log:
        process = subprocess.run([sys.executable, "-c", _RUNNER, str(dags / "runlink_demo.py"), str(result_path)],
                                 env=env, stdout=log, stderr=subprocess.STDOUT,
                                 timeout=max(10.0, deadline - time.monotonic()))
    if not result_path.is_file():
        tail = log_path.read_text("utf-8", errors="replace")[-4000:]
        print(tail, file=sys.stderr)
        _say(f"dag.test() did not finish (exit status {process.returncode}); its output: {log_path}")
        return None
    return {**json.loads(result_path.read_text()), "log": str(log_path)}


def _tree(tracker: _Tracker, run_id: str) -> dict | None:
    from runlink.api_client import TrackerError

    try:
        with _client(tracker.url, tracker.token) as api:
            page = api.get("/api/v1/dag-runs", dag_id=DEMO_DAG_ID, run_id=run_id)
            if not page.get("items"):
                return None
            return api.get(f"/api/v1/dag-runs/{page['items'][0]['id']}")
    except TrackerError:
        return None


def missing(tree: dict | None) -> list[str]:
    """What the demo's tree still lacks (empty: complete): every task ended, Spark apps under the Spark tasks."""
    if not tree:
        return ["the DAG run"]
    ended = {a["task_id"]: a for a in tree.get("task_attempts", []) if a.get("end_date")}
    lacking = [f"the end of task {task}" for task in DEMO_TASKS if task not in ended]
    for task in SPARK_TASKS:
        apps = (ended.get(task) or {}).get("spark_apps") or []
        if task in ended and not (apps and all(app.get("end_time") and app.get("jobs") for app in apps)):
            lacking.append(f"the Spark application of {task}")
    if tree.get("state") not in ("success", "failed"):
        lacking.append("the end of the DAG run")
    return lacking


def _problems(tree: dict) -> list[str]:
    """Differences from what the demo shows when all works: only `fails` fails."""
    problems = []
    for attempt in tree.get("task_attempts", []):
        expected = "failed" if attempt["task_id"] == FAILING_TASK else "success"
        if attempt.get("state") != expected:
            error = (attempt.get("error") or {}).get("message") or ""
            problems.append(f"task {attempt['task_id']} is {attempt.get('state')}, expected {expected}"
                            + (f": {error[:300]}" if error else ""))
    return problems


def _serve(tracker: _Tracker, args: argparse.Namespace, home: Path) -> None:
    """Keep, stop or leave the tracker the demo started (see the module docstring)."""
    process = tracker.process
    if process is None:
        _say(f"the tracker at {tracker.url} was already running: left as it is")
        return
    if args.detach:
        _say(f"the tracker keeps running in the background (pid {process.pid}); stop it with: kill {process.pid}")
        return
    keep = args.keep_serving
    if args.stop:
        keep = False
    if keep is None:
        keep = sys.stdin.isatty() and sys.stdout.isatty()
    if keep:
        _say(f"serving the UI at {tracker.url}/ until Ctrl-C (--detach leaves it running, --no-keep-serving "
             "stops it at once)")
        try:
            process.wait()
            _say(f"the tracker exited ({process.returncode}); see {tracker.log_path}")
        except KeyboardInterrupt:
            print(flush=True)
    _stop(process)
    (home / "demo-tracker.pid").unlink(missing_ok=True)
    _say(f"stopped the tracker; the data stays in {home} (`runlink server --open --home {home}` serves it again)")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _demo(args: argparse.Namespace) -> int:
    from runlink import config

    deadline = time.monotonic() + args.timeout
    home = Path(args.home).expanduser().resolve() if args.home else config.default_home()
    url = (args.url or config.env_value("RUNLINK_URL") or config.DEFAULT_URL).rstrip("/")
    tracker = _start_tracker(url, home, deadline)
    # SIGTERM (kill, CI cancelling) must stop the tracker too: turn it into the same path as Ctrl-C
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        return _run(args, home, tracker, deadline)
    except KeyboardInterrupt:
        if tracker.process is not None and not args.detach:
            _stop(tracker.process)
            (home / "demo-tracker.pid").unlink(missing_ok=True)
        _say("interrupted")
        return 130
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace, home: Path, tracker: _Tracker, deadline: float) -> int:
    import runlink.airflow.example_dags as examples

    dags = Path(examples.__file__).resolve().parent
    airflow_home = home / "demo-airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    env = _airflow_env(home, airflow_home, dags, tracker)
    if not _migrate(env, airflow_home, deadline):
        _serve(tracker, args, home)
        return 1
    _say("running the DAG runlink_demo with Airflow's dag.test(): SparkSubmitOperator, a BashOperator running "
         "spark-submit, a @task with a SparkSession and log_metric, and a task that fails on purpose "
         "(a few minutes on a busy machine)")
    started = time.monotonic()
    result = _run_dag(env, dags, airflow_home, deadline)
    if result is None:
        _serve(tracker, args, home)
        return 1
    _say(f"Airflow finished run {result['run_id']} in {time.monotonic() - started:.0f} s: {result['state']} "
         f"(the task `{FAILING_TASK}` fails on purpose); Airflow's output: {result['log']}")

    tree = _tree(tracker, result["run_id"])
    while missing(tree) and time.monotonic() < deadline:
        time.sleep(0.25)  # polling interval; the condition is the tracker's tree
        tree = _tree(tracker, result["run_id"])
    lacking = missing(tree)
    if lacking:
        _say("the tracker does not have the whole tree yet (missing: " + ", ".join(lacking) + "); showing what "
             "it has")

    from runlink.cli import main as runlink_main

    print(flush=True)
    os.environ["RUNLINK_HOME"] = str(home)
    if tracker.token:
        os.environ["RUNLINK_TOKEN"] = tracker.token
    status = runlink_main(["runs", "show", DEMO_DAG_ID, result["run_id"], "--url", tracker.url])
    print(flush=True)
    problems = _problems(tree) if tree else []
    for problem in problems:
        _say("unexpected: " + problem)
    _where_to_look(tracker, home, tree, result["run_id"])
    if args.browser and tree:
        import webbrowser

        webbrowser.open(f"{tracker.url}/ui/dag-runs/{tree['id']}")
    ok = not lacking and not problems and status == 0
    _serve(tracker, args, home)
    return 0 if ok else 1


def _where_to_look(tracker: _Tracker, home: Path, tree: dict | None, run_id: str) -> None:
    import runlink.airflow.example_dags as examples

    url = tracker.url
    prefix = "" if url == "http://127.0.0.1:8686" else f"RUNLINK_URL={url} "
    print("Where to look:")
    if tree:
        print(f"  this run in the web UI   {url}/ui/dag-runs/{tree['id']}")
    print(f"  all DAGs                 {url}/ui/dags")
    if tracker.open_reads:
        print("  (this tracker runs with --open: reading needs no login)")
    else:
        print(f"  (log in with a read or admin token, e.g. the one in {home / 'token'})")
    print(f"  the tree in a terminal   {prefix}runlink runs show {DEMO_DAG_ID} '{run_id}'   (--json for JSON)")
    if tree:
        print(f"  the tree as JSON         {url}/api/v1/dag-runs/{tree['id']}")
    print(f"  the DAG                  {Path(examples.__file__).resolve().parent / 'runlink_demo.py'}")
    print(flush=True)
