"""`runlink demo`: a real Airflow DAG with real Spark jobs, reported to the embedded tracker.

Heavy imports (Airflow, requests) happen inside the handler; `runlink --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEMO_DAG_ID = "runlink_demo"
DEMO_TASKS = ("spark_submit", "bash_spark_submit", "session_in_task", "fails")


def register(subparsers: argparse._SubParsersAction) -> None:
    demo = subparsers.add_parser(
        "demo", help="run the example DAG (Airflow + Spark) against the embedded tracker and show its run tree"
    )
    demo.add_argument("--url", help="tracker URL (default RUNLINK_URL or http://127.0.0.1:8686)")
    demo.add_argument("--home", help="state folder (default $RUNLINK_HOME or ~/.runlink)")
    demo.add_argument("--stop", action="store_true", help="stop the tracker the demo started when it is done")
    demo.add_argument("--timeout", type=float, default=600.0, help="seconds the whole demo may take")
    demo.set_defaults(handler=_demo)


def _say(text: str) -> None:
    print(f"runlink demo: {text}", flush=True)


def _healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(url.rstrip("/") + "/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def _start_tracker(url: str, home: Path, deadline: float) -> subprocess.Popen | None:
    """Reuse a tracker that answers at `url`, else start `runlink server` there (detached, it outlives us)."""
    if _healthy(url):
        _say(f"using the tracker already running at {url}")
        return None
    from urllib.parse import urlparse

    parsed = urlparse(url)
    log_path = home / "demo-tracker.log"
    home.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, "-m", "runlink", "server", "--host", parsed.hostname or "127.0.0.1",
            "--port", str(parsed.port or 8686), "--home", str(home), "--open"]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "RUNLINK_HOME": str(home)})
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"runlink demo: the tracker exited ({process.returncode}); see {log_path}")
        if _healthy(url):
            _say(f"started the tracker at {url} (SQLite in {home}, pid {process.pid}, log {log_path})")
            return process
        time.sleep(0.1)  # polling interval while the server boots; the condition is /healthz
    process.kill()
    raise SystemExit(f"runlink demo: the tracker did not start in time; see {log_path}")


def _tree(url: str, token: str | None, run_id: str) -> dict | None:
    import requests

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    page = requests.get(f"{url}/api/v1/dag-runs", params={"dag_id": DEMO_DAG_ID, "run_id": run_id},
                        headers=headers, timeout=10).json()
    if not page.get("items"):
        return None
    return requests.get(f"{url}/api/v1/dag-runs/{page['items'][0]['id']}", headers=headers, timeout=10).json()


def _complete(tree: dict | None) -> bool:
    if not tree:
        return False
    ended = {a["task_id"]: a for a in tree.get("task_attempts", []) if a.get("end_date")}
    if set(DEMO_TASKS) - set(ended):
        return False
    apps = [app for task in DEMO_TASKS[:3] for app in ended[task].get("spark_apps") or []]
    return len(apps) >= 3 and all(app.get("end_time") for app in apps)


def _demo(args: argparse.Namespace) -> int:
    from runlink import config

    deadline = time.monotonic() + args.timeout
    home = Path(args.home).expanduser() if args.home else config.default_home()
    url = (args.url or config.env_value("RUNLINK_URL") or config.DEFAULT_URL).rstrip("/")
    tracker = _start_tracker(url, home, deadline)
    token = config.env_value("RUNLINK_TOKEN") or config.read_token_file(home)

    import runlink.airflow.example_dags as examples

    dags = Path(examples.__file__).resolve().parent
    airflow_home = home / "demo-airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW_CONN_RUNLINK_DEMO_SPARK": json.dumps({"conn_type": "spark", "host": "local[2]"}),
        "RUNLINK_URL": url,
        "RUNLINK_HOME": str(home),
        "RUNLINK_DEMO_OUT": str(home / "demo-out"),
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    if token:
        env["RUNLINK_TOKEN"] = token
    _say(f"preparing Airflow's metadata database in {airflow_home}")
    migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                             text=True, timeout=max(10.0, deadline - time.monotonic()))
    if migrate.returncode != 0:
        print(migrate.stdout[-3000:], migrate.stderr[-3000:], file=sys.stderr)
        return 1
    _say("running the DAG runlink_demo with dag.test(): SparkSubmitOperator, BashOperator running spark-submit, "
         "a @task with a SparkSession and log_metric, and a task that fails (this takes a minute)")
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('runlink_demo', {str(dags / 'runlink_demo.py')!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        "run = module.dag.test()\n"
        "print('RUNLINK_DEMO_RUN=' + json.dumps([run.run_id, str(getattr(run.state, 'value', run.state))]))\n"
    )
    log_path = airflow_home / "dag-test.log"
    with open(log_path, "w") as log:
        result = subprocess.run([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=log,
                                text=True, timeout=max(10.0, deadline - time.monotonic()))
    marker = [line for line in result.stdout.splitlines() if line.startswith("RUNLINK_DEMO_RUN=")]
    if not marker:
        print(result.stdout[-3000:], file=sys.stderr)
        _say(f"dag.test() did not finish; its log: {log_path}")
        return 1
    run_id, state = json.loads(marker[0].split("=", 1)[1])
    _say(f"Airflow finished run {run_id}: {state} (the task `fails` fails on purpose); Airflow's log: {log_path}")

    tree = None
    while time.monotonic() < deadline:
        tree = _tree(url, token, run_id)
        if _complete(tree):
            break
        time.sleep(0.25)  # polling interval; the condition is the tracker's tree
    else:
        _say("the tracker does not have the whole tree yet; showing what it has")

    from runlink.cli import main as runlink_main

    show = ["runs", "show", DEMO_DAG_ID, run_id, "--url", url]
    os.environ.setdefault("RUNLINK_HOME", str(home))
    status = runlink_main(show)
    print()
    _say(f"the tree above is `runlink runs show {DEMO_DAG_ID} '{run_id}'`; as JSON: --json")
    if tree:
        _say(f"API: {url}/api/v1/dag-runs/{tree['id']}")
    _say(f"web UI: {url}/")
    if tracker is not None:
        if args.stop:
            tracker.terminate()
            _say("stopped the tracker")
        else:
            _say(f"the tracker keeps running (pid {tracker.pid}); stop it with: kill {tracker.pid}")
    return 0 if _complete(tree) and status == 0 else 1
