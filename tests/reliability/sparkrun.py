"""Real `spark-submit` runs of tests/reliability/apps/counted_app.py for the fault suite, and the checks that compare
what the tracker stored with what each application itself reports (Spark's status tracker, its own action count,
and the JVM listener's delivery counters read after its end-of-application flush).

Shared by tests/reliability/test_spark_faults.py (reduced, CI) and scripts/reliability.py (full)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from runlink.api_client import TrackerClient

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
APP = HERE / "apps" / "counted_app.py"
DAGS = HERE / "dags"
BIN = Path(sys.executable).parent
SPARK_SUBMIT = BIN / "spark-submit"
UNDELIVERED = re.compile(r"runlink: (\d+) events not delivered to \S+ within (\d+) ms \(sent (\d+), dropped (\d+), "
                         r"send errors (\d+)\)")


def jar_path() -> str | None:
    try:
        from runlink.spark.conf import listener_jar

        return listener_jar()
    except Exception:  # noqa: BLE001 - ListenerJarMissing: the caller skips and says why
        return None


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    """This environment less any Airflow context or tracker/Spark settings (the apps get exactly what we give)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "DBND__", "PYSPARK_", "SPARK_", "AIRFLOW_"))}
    env.update(PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable, RUNLINK_HOME=str(home),
               PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(ROOT / "python"))
    env.update(extra)
    return env


@dataclass
class App:
    """One running (then finished) spark-submit of counted_app.py."""

    name: str
    out: Path
    process: subprocess.Popen
    started: float
    expected: dict[str, Any] = field(default_factory=dict)  # where the tracker must put it
    returncode: int | None = None
    wall_s: float | None = None
    log: str = ""
    report: dict[str, Any] = field(default_factory=dict)

    def wait(self, timeout: float = 900) -> App:
        try:
            self.returncode = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
            raise
        self.wall_s = time.monotonic() - self.started
        self.log = (self.out / "driver.log").read_text("utf-8", errors="replace")
        report = self.out / "report.json"
        self.report = json.loads(report.read_text()) if report.exists() else {}
        return self

    def ok(self) -> None:
        assert self.returncode == 0 and self.report and "APP DONE" in self.log, (
            f"{self.name} failed rc={self.returncode}:\n{self.log[-6000:]}")

    @property
    def jvm(self) -> dict[str, Any]:
        """The JVM listener's own counters after its end-of-application flush."""
        agents = [a for a in self.report.get("jvm", []) if "sent" in a]
        assert len(agents) == 1, (self.name, self.report.get("jvm"))
        return agents[0]

    def undelivered_line(self) -> dict[str, int] | None:
        """The driver log's 'N events not delivered ... (sent, dropped, send errors)' line, if the flush gave up."""
        match = UNDELIVERED.search(self.log)
        if not match:
            return None
        keys = ("pending", "waited_ms", "sent", "dropped", "send_errors")
        return dict(zip(keys, map(int, match.groups()), strict=True))


def submit(name: str, out: Path, *, url: str | None, token: str | None, context: dict[str, str] | None = None,
           context_in: str = "env", app_args: tuple[str, ...] = (), tracking: bool = True,
           driver_memory: str = "512m", conf: dict[str, str] | None = None,
           expected: dict[str, Any] | None = None) -> App:
    """Start `spark-submit --master local[1]` of the counted app; returns at once (call `.wait()`).

    `context` is a raw Airflow context (`dag_id`...) given as AIRFLOW_CTX_* in the driver's environment
    (`context_in="env"`, as a parent task does) or as `spark.env.AIRFLOW_CTX_*` conf (`"conf"`).
    `tracking=False` runs the same app with no runlink conf at all (the baseline for overhead bounds)."""
    import runlink.spark
    from runlink.context import ENV_KEYS

    out.mkdir(parents=True, exist_ok=True)
    names = {key: env_name for env_name, key in ENV_KEYS.items()}
    env_ctx = {names[k]: v for k, v in (context or {}).items()} if context_in == "env" else {}
    env = clean_env(out / "home", RUNLINK_APP_NAME=name, **env_ctx)
    if token:
        env["RUNLINK_TOKEN"] = token
    if url and tracking:  # the driver's Python side (log_dataframe) reads the tracker from the environment
        env["RUNLINK_URL"] = url
    args = [str(SPARK_SUBMIT), "--master", "local[1]", "--driver-memory", driver_memory,
            "--conf", "spark.ui.enabled=false", "--conf", "spark.ui.showConsoleProgress=false",
            "--conf", "spark.sql.shuffle.partitions=2", "--conf", f"spark.local.dir={out / 'local'}",
            "--conf", f"spark.sql.warehouse.dir={out / 'warehouse'}",
            "--conf", "spark.driver.extraJavaOptions=-XX:+UseSerialGC"]
    settings: dict[str, str] = {}
    if tracking:
        settings.update(runlink.spark.conf(context=context if context_in == "conf" else {}, url=url))
    settings.update(conf or {})
    for key, value in settings.items():
        args += ["--conf", f"{key}={value}"]
    args += [str(APP), str(out / "report.json"), *app_args]
    log = open(out / "driver.log", "wb")  # noqa: SIM115 - the child writes it; closed with the process
    process = subprocess.Popen(args, cwd=out, env=env, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    return App(name=name, out=out, process=process, started=time.monotonic(), expected=expected or {})


# ---------------------------------------------------------------------------------------------------- the tracker

def api(url: str, token: str, path: str, **params: Any) -> Any:
    """The tracker's decoded answer (asked once: the faults tests kill the tracker on purpose)."""
    with TrackerClient(url, token, retries=0) as client:
        return client.get(path, **params)


def spark_app_doc(url: str, token: str, app_id: str) -> dict[str, Any] | None:
    """The tracker's Spark app (jobs, stages, queries, dag_run_pk, task_attempt_pk), or None before it exists."""
    from runlink.ids import spark_app_id

    with TrackerClient(url, token, retries=0) as client:
        return client.get(f"/api/v1/spark-apps/{spark_app_id(app_id)}", allow_404=True)


def complete(doc: dict[str, Any] | None, report: dict[str, Any]) -> bool:
    """The tracker holds everything Spark itself saw (jobs ended, stages, queries, the app's end)."""
    if not doc or not doc.get("end_time"):
        return False
    jobs_done = {j["job_id"] for j in doc["jobs"] if j.get("result")}
    jvm_queries = [q for q in doc["queries"] if q.get("listener") != "python"]
    return (jobs_done >= set(report["jobs"]) and len(doc["stages"]) >= len(report["stages"])
            and len(jvm_queries) >= report["actions"])


def wait_complete(url: str, token: str, apps: list[App], deadline_s: float = 120) -> dict[str, dict[str, Any]]:
    """Poll until every app is complete in the tracker (or the deadline: the caller's checks say what is missing)."""
    deadline = time.monotonic() + deadline_s
    docs: dict[str, dict[str, Any]] = {}
    while True:
        for app in apps:
            if app.name not in docs or not complete(docs[app.name], app.report):
                docs[app.name] = spark_app_doc(url, token, app.report["app_id"]) or {}
        if all(complete(docs[a.name], a.report) for a in apps) or time.monotonic() > deadline:
            return docs
        time.sleep(0.5)  # polling interval; the condition is what the tracker answers


def check_counts(app: App, doc: dict[str, Any]) -> dict[str, int]:
    """The tracker's jobs, stages and JVM queries of this app equal the app's own view; nothing doubled."""
    assert doc, f"{app.name}: app {app.report['app_id']} not in the tracker"
    job_ids = [j["job_id"] for j in doc["jobs"]]
    stage_keys = [(s["stage_id"], s["attempt_id"]) for s in doc["stages"]]
    jvm_queries = [q for q in doc["queries"] if q.get("listener") != "python"]
    figures = {"jobs": len(job_ids), "stages": len(stage_keys), "queries_jvm": len(jvm_queries),
               "spark_jobs": len(app.report["jobs"]), "spark_stages": len(app.report["stages"]),
               "spark_actions": app.report["actions"],
               "duplicated": (len(job_ids) - len(set(job_ids))) + (len(stage_keys) - len(set(stage_keys)))}
    assert figures["duplicated"] == 0, (app.name, figures)
    assert sorted(job_ids) == sorted(app.report["jobs"]), (app.name, figures)
    assert sorted(stage_keys) == sorted(tuple(s) for s in app.report["stages"]), (app.name, figures)
    assert all(j.get("result") == "succeeded" for j in doc["jobs"]), (app.name, doc["jobs"])
    assert len(jvm_queries) == app.report["actions"], (app.name, figures)
    return figures


def stored_events(db_url: str) -> dict[tuple[str, str], Counter]:
    """Stored events by (source agent, Spark app id) -> Counter of types (the events table is keyed by event id)."""
    from sqlalchemy import create_engine, text

    from runlink.tracker.ingest import raw_events
    from runlink.tracker.settings import normalize_db_url

    engine = create_engine(normalize_db_url(db_url))
    out: dict[tuple[str, str], Counter] = {}
    try:
        with engine.connect() as conn:
            ids = [row[0] for row in conn.execute(text("SELECT id FROM events"))]
            for event in raw_events(conn, ids).values():  # the stored copies, from their batches
                key = ((event.get("source") or {}).get("agent", ""), (event.get("spark") or {}).get("app_id", ""))
                out.setdefault(key, Counter())[event["type"]] += 1
            total = conn.execute(text("SELECT COUNT(*), COUNT(DISTINCT id) FROM events")).one()
    finally:
        engine.dispose()
    out[("*", "*")] = Counter(rows=total[0], distinct=total[1])
    return out


def jvm_figures(app: App, stored: dict[tuple[str, str], Counter]) -> dict[str, Any]:
    """The JVM listener's accounting against the database.

    sent: every event the listener accepted (sent + dropped + pending once its sender settled after the app);
    acknowledged: in batches the tracker answered 2xx; stored: this app's JVM events in the database;
    lost: acknowledged but not stored (must be 0); dropped: counted drops (full queue/retry buffer, refused);
    pending_at_exit: not yet delivered when spark.stop() returned, i.e. what a real exit leaves undelivered."""
    counters = app.jvm
    in_db = sum(stored.get(("jvm", app.report["app_id"]), Counter()).values())
    return {"sent": counters["sent"] + counters["dropped"] + counters["pending"], "acknowledged": counters["sent"],
            "stored": in_db, "lost": max(0, counters["sent"] - in_db), "dropped": counters["dropped"],
            "pending_at_exit": counters["at_stop"]["pending"], "acknowledged_at_exit": counters["at_stop"]["sent"],
            "send_errors": counters["send_errors"], "settled": counters["idle"]}


def tracker_metrics(url: str) -> dict[str, float]:
    """Prometheus samples of the tracker's /metrics (name{labels} -> value)."""
    text = requests.get(url + "/metrics", timeout=30).text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def rejected(url: str) -> dict[str, float]:
    """Batches and events the tracker rejected (400/401/403/413/422...), from its /metrics."""
    return {k: v for k, v in tracker_metrics(url).items()
            if k.startswith(("runlink_batches_rejected_total", "runlink_events_rejected_total")) and v}


# ---------------------------------------------------------------------------------------------------- Airflow

DAG_TEST = r'''
import importlib.util, json, sys
spec = importlib.util.spec_from_file_location("reliability_dag", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
run = module.rel_airflow.test()
print("RUNLINK_DAG_RUN=" + json.dumps({"run_id": run.run_id, "state": str(getattr(run.state, "value", run.state))}))
'''


def airflow_env(home: Path, url: str, token: str, out: Path) -> dict[str, str]:
    """A private Airflow (SQLite metadata DB) whose task processes report to this tracker."""
    home.mkdir(parents=True, exist_ok=True)
    env = clean_env(home / "runlink-home", RUNLINK_URL=url, RUNLINK_TOKEN=token,
                    RUNLINK_RELIABILITY_OUT=str(out))
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__DAGS_FOLDER=str(DAGS), AIRFLOW__CORE__LOAD_EXAMPLES="False",
               AIRFLOW__CORE__UNIT_TEST_MODE="False",
               AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}")
    return env


def migrate_airflow(env: dict[str, str]) -> None:
    res = subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]


def start_dag_test(env: dict[str, str], out: Path) -> subprocess.Popen:
    """dag.test() of rel_airflow in a fresh interpreter (a task process of its own, as on a worker)."""
    (out / "dag_app").mkdir(parents=True, exist_ok=True)
    log = open(out / "dag_test.log", "wb")  # noqa: SIM115 - the child writes it
    process = subprocess.Popen([sys.executable, "-c", DAG_TEST, str(DAGS / "reliability_dag.py")], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=out)
    log.close()
    return process


def dag_test_result(process: subprocess.Popen, out: Path, timeout: float = 900) -> dict[str, str]:
    process.wait(timeout)
    text = (out / "dag_test.log").read_text("utf-8", errors="replace")
    for line in text.splitlines():
        if line.startswith("RUNLINK_DAG_RUN="):
            return json.loads(line.split("=", 1)[1])
    raise AssertionError(f"dag.test() failed rc={process.returncode}:\n{text[-6000:]}")
