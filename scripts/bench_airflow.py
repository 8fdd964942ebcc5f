"""Per-task overhead of runlink on Airflow, against no plugin and against the OpenLineage provider.

A DAG of 50 trivial tasks runs with dag.test() in fresh interpreters, in interleaved rounds (none, runlink,
openlineage, in a shuffled order each round), so that machine noise hits all three alike:

- none: runlink's entry points hidden (plugin and policy not loaded), OpenLineage disabled;
- runlink: the plugin + policy, reporting to a real tracker (`runlink server`, SQLite) on this machine;
- runlink_flush: the same, but each attempt end waits for delivery as in a real task process (which ends with
  `os._exit`): under dag.test() the tasks run in-process, the process lives on, and runlink does not wait there;
  this row shows what a worker's task process pays for that wait (one round trip to the tracker);
- openlineage: apache-airflow-providers-openlineage with its console transport, runlink hidden.

Per-task time = wall time of dag.test() / 50 (scheduling, task runs, listeners, flushes: everything).
Overhead = per-task time minus the `none` per-task time of the same round; the report gives medians.

Usage: .venv/bin/python scripts/bench_airflow.py [--rounds 7] [--tasks 50] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

DAG_FILE = '''
from datetime import datetime
try:
    from airflow.sdk import DAG
except ImportError:
    from airflow import DAG
try:
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:
    from airflow.operators.python import PythonOperator

def noop():
    return None

with DAG("bench_trivial", schedule=None, start_date=datetime(2024, 1, 1), catchup=False) as dag:
    for i in range({tasks}):
        PythonOperator(task_id=f"t{{i:03d}}", python_callable=noop)
'''

RUNNER = r'''
import importlib.metadata, json, os, sys, time
if os.environ.get("BENCH_HIDE_RUNLINK") == "1":
    _orig = importlib.metadata.distributions
    def _distributions(*args, **kwargs):
        return [d for d in _orig(*args, **kwargs) if (d.metadata.get("Name") or "").lower() != "runlink"]
    importlib.metadata.distributions = _distributions
    try:
        import importlib_metadata
        _orig2 = importlib_metadata.distributions
        importlib_metadata.distributions = lambda *a, **k: [
            d for d in _orig2(*a, **k) if (d.metadata.get("Name") or "").lower() != "runlink"]
    except ImportError:
        pass
hook_s = [0.0]
if os.environ.get("BENCH_HIDE_RUNLINK") != "1":
    # time spent inside runlink itself (hook bodies and the injection around execute), less noisy than wall time
    import runlink.airflow.injection as _injection
    import runlink.airflow.listener as _listener

    def _timed(fn):
        def wrapper(*args, **kwargs):
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                hook_s[0] += time.perf_counter() - started
        return wrapper

    for _name in ("_start", "_success", "_failed", "_stopping", "_dag_run_event"):
        setattr(_listener, _name, _timed(getattr(_listener, _name)))
    _injection.apply = _timed(_injection.apply)
    if os.environ.get("BENCH_FORCE_FLUSH") == "1":
        _listener._process_goes_on = lambda: False
import importlib.util
spec = importlib.util.spec_from_file_location("bench_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from airflow.plugins_manager import get_plugin_info
names = sorted(p["name"] for p in get_plugin_info())
start = time.perf_counter()
run = module.dag.test()
elapsed = time.perf_counter() - start
print("BENCH=" + json.dumps({"elapsed": elapsed, "state": str(getattr(run.state, "value", run.state)),
                             "plugins": names, "hook_s": hook_s[0]}))
'''


def start_tracker(home: Path) -> tuple[subprocess.Popen, str, str]:
    from runlink.tracker.process import TrackerProcess

    tracker = TrackerProcess(home, log_path=home / "tracker.log").start()
    return tracker.process, tracker.url, tracker.token


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--json", help="write the raw figures here")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="runlink-bench-"))
    dags = work / "dags"
    dags.mkdir()
    dag_file = dags / "bench_dag.py"
    dag_file.write_text(DAG_FILE.format(tasks=args.tasks))
    runner = work / "runner.py"
    runner.write_text(RUNNER)
    tracker_home = work / "tracker"
    tracker_home.mkdir()
    tracker, url, token = start_tracker(tracker_home)
    base = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RUNLINK_", "AIRFLOW", "OPENLINEAGE"))},
        "AIRFLOW_HOME": str(work / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
    }
    configs = {
        "none": {**base, "BENCH_HIDE_RUNLINK": "1", "AIRFLOW__OPENLINEAGE__DISABLED": "true"},
        "runlink": {**base, "AIRFLOW__OPENLINEAGE__DISABLED": "true", "RUNLINK_URL": url, "RUNLINK_TOKEN": token,
                    "RUNLINK_HOME": str(work / "client")},
        "runlink_flush": {**base, "AIRFLOW__OPENLINEAGE__DISABLED": "true", "RUNLINK_URL": url,
                          "RUNLINK_TOKEN": token, "RUNLINK_HOME": str(work / "client"), "BENCH_FORCE_FLUSH": "1"},
        "openlineage": {**base, "BENCH_HIDE_RUNLINK": "1", "AIRFLOW__OPENLINEAGE__TRANSPORT": '{"type": "console"}',
                        "AIRFLOW__OPENLINEAGE__NAMESPACE": "bench"},
    }
    print(f"load average at start: {os.getloadavg()}", flush=True)
    try:
        migrate = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=configs["none"],
                                 capture_output=True, text=True)
        if migrate.returncode:
            print(migrate.stderr[-3000:])
            return 1
        # warm-up: the first dag.test() also syncs the DAG to the database
        subprocess.run([sys.executable, str(runner), str(dag_file)], env=configs["none"], capture_output=True)
        results: dict[str, list[float]] = {name: [] for name in configs}
        inside: dict[str, list[float]] = {name: [] for name in configs if name.startswith("runlink")}
        for round_no in range(args.rounds):
            order = list(configs)
            random.shuffle(order)
            for name in order:
                out = subprocess.run([sys.executable, str(runner), str(dag_file)], env=configs[name],
                                     capture_output=True, text=True, timeout=1800)
                line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH=")), None)
                if line is None:
                    print(out.stdout[-2000:], out.stderr[-4000:])
                    return 1
                data = json.loads(line[6:])
                per_task_ms = data["elapsed"] / args.tasks * 1000
                results[name].append(per_task_ms)
                hook_ms = data["hook_s"] / args.tasks * 1000
                if name.startswith("runlink"):
                    inside[name].append(hook_ms)
                print(f"round {round_no + 1} {name:13s} {per_task_ms:8.1f} ms/task"
                      + (f" (inside runlink {hook_ms:5.1f})" if name.startswith("runlink") else "")
                      + f"  state={data['state']} plugins={data['plugins']}", flush=True)
    finally:
        tracker.terminate()
        tracker.wait(timeout=30)

    none = results["none"]
    report = {"tasks": args.tasks, "rounds": args.rounds, "per_task_ms": results, "loadavg_end": os.getloadavg()}
    print(f"load average at end: {os.getloadavg()}")
    print(f"\nper-task wall time, median of {args.rounds} interleaved rounds ({args.tasks} trivial tasks, dag.test()):")
    for name in configs:
        overhead = [value - base_value for value, base_value in zip(results[name], none, strict=True)]
        report[f"{name}_overhead_ms"] = statistics.median(overhead)
        print(f"  {name:12s} {statistics.median(results[name]):8.1f} ms/task   overhead vs none: "
              f"{statistics.median(overhead):+7.1f} ms/task (median of per-round differences)")
    for name, values in inside.items():
        report[f"{name}_inside_ms"] = statistics.median(values)
        print(f"  {name:12s} time inside runlink (hooks + injection): {statistics.median(values):6.1f} ms/task median")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
