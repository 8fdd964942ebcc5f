"""The fault suite with real Spark: real `spark-submit` apps (local[1], small driver heap) with the JVM listener jar
(and the PySpark listener where said), a real tracker, a real Airflow DAG run (dag.test() with the runlink plugin).

Each app reports its own view (Spark's status tracker, its action count, the JVM listener's delivery counters after
the end-of-application flush), and the tests compare the tracker's copy with that view, not with what the listener
claims. Reduced here (CI, 2 cores); scripts/reliability.py runs it at full size (RUNLINK_RELIABILITY_SPARK_APPS=20,
RUNLINK_RELIABILITY_FULL=1) and prints the figures.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import sparkrun
from faults import FaultyProxy, killable_tracker, record, tracker_db_url
from sparkrun import App, jvm_figures, submit

from support.tracker import Tracker

pytestmark = [pytest.mark.spark, pytest.mark.timeout(1800)]

FULL = os.environ.get("RUNLINK_RELIABILITY_FULL") == "1"
SPARK_APPS = int(os.environ.get("RUNLINK_RELIABILITY_SPARK_APPS", "20" if FULL else "4"))
KILL_APPS = int(os.environ.get("RUNLINK_RELIABILITY_KILL_APPS", "3" if FULL else "1"))
OUTAGE_S = 5.0  # how long the tracker stays down: the fault's length, not a synchronisation
FLUSH_MS = 3000  # spark.runlink.flushTimeoutMs in the slow/500 scenario
#: whole-app wall time noise between two spark-submits started together on a busy 2-core machine (JVM start)
WALL_NOISE_S = 10.0
#: spark.stop()'s own teardown (block manager, RPC) varies by seconds under load, tracked or not
STOP_NOISE_S = 3.0


@pytest.fixture(autouse=True)
def _jar() -> None:
    if sparkrun.jar_path() is None:
        pytest.skip("the Spark listener jar is not built: bash scripts/build-jar.sh")


def _tracker(tmp_path: Path, backend: str = "sqlite") -> Tracker:
    tracker = killable_tracker(tmp_path / "tracker", tracker_db_url(backend, tmp_path / "tracker"))
    tracker.start()
    return tracker


def _post(tracker: Tracker, events: list[dict[str, Any]]) -> None:
    import requests

    response = requests.post(tracker.url + "/api/v1/events", json={"events": events}, timeout=60,
                             headers={"Authorization": f"Bearer {tracker.token}"})
    assert response.status_code == 202, response.text


def _sum(rows: list[dict[str, Any]], key: str) -> int:
    return sum(int(r[key]) for r in rows)


# ---------------------------------------------------------------------------------------------------- concurrency

def concurrent_contexts(n: int) -> list[tuple[dict[str, str], str, dict[str, Any]]]:
    """n distinct (DAG, run, task, try) targets over 2 DAGs x 2 runs, in every EXECUTION_DATE spelling (full
    timestamp with the run id, `{{ ts_nodash }}`, `{{ ds }}`, `{{ ts }}`), given in the environment or as Spark conf.
    Returns (raw context, where it is given, where the tracker must put the app)."""
    out = []
    for i in range(n):
        dag = f"rel_conc_{'ab'[i % 2]}"
        day = 21 + (i // 2) % 2
        logical = f"2026-11-{day}T10:00:00+00:00"
        run_id = f"scheduled__{logical}"
        task, try_number = f"task_{i // 4}", 1 + i % 3
        spelling = (i // 4 + i) % 4
        context = {"dag_id": dag, "task_id": task, "try_number": str(try_number)}
        if spelling == 0:
            context.update(execution_date=logical, dag_run_id=run_id)
        elif spelling == 1:
            context["execution_date"] = f"202611{day}T100000"  # ts_nodash
        elif spelling == 2:
            context["execution_date"] = f"2026-11-{day}"  # ds
        else:
            context["execution_date"] = f"2026-11-{day}T10:00:00+00:00"  # ts
        out.append((context, "conf" if i % 3 == 0 else "env",
                    {"dag_id": dag, "run_id": run_id, "task_id": task, "try_number": try_number}))
    return out


def _run_anchors(targets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One dag_run.start per DAG run, as Airflow's listener reports it (full logical date + run id): what a
    `{{ ds }}` context resolves against. Posted after the apps started: arrival order must not matter."""
    from runlink.protocol.events import make_event

    runs = {(t["dag_id"], t["run_id"]) for t in targets}
    return [make_event("dag_run.start", {"state": "running"}, agent="airflow",
                       context={"dag_id": dag, "execution_date": run.split("__", 1)[1], "dag_run_id": run})
            for dag, run in sorted(runs)]


def test_concurrent_spark_apps_and_a_dag_run_link_correctly(tmp_path: Path) -> None:
    """SPARK_APPS concurrent apps (each its own Airflow context) and a real DAG run, one tracker: every app under
    exactly its task attempt, its jobs/stages/queries equal to its own view, no cross-linking, no duplicates."""
    tracker = _tracker(tmp_path)
    out = tmp_path / "out"
    airflow = sparkrun.airflow_env(tmp_path / "airflow", tracker.url, tracker.token, out)
    try:
        sparkrun.migrate_airflow(airflow)
        started = time.monotonic()
        dag = sparkrun.start_dag_test(airflow, out)
        targets = concurrent_contexts(SPARK_APPS)
        apps = [submit(f"conc-{i}", out / f"app{i}", url=tracker.url, token=tracker.token, context=context,
                       context_in=where, app_args=("--jobs", str(2 + i % 3)), expected=expected)
                for i, (context, where, expected) in enumerate(targets)]
        _post(tracker, _run_anchors([a.expected for a in apps]))
        for app in apps:
            app.wait()
        dag_run = sparkrun.dag_test_result(dag, out)
        wall = time.monotonic() - started
        for app in apps:
            app.ok()
        dag_app = App(name="dag", out=out / "dag_app", process=dag, started=started)
        dag_app.log = (out / "dag_app" / "driver.log").read_text("utf-8", errors="replace")
        dag_app.report = json.loads((out / "dag_app" / "report.json").read_text())
        assert dag_run["state"] == "success", (out / "dag_test.log").read_text()[-5000:]

        docs = sparkrun.wait_complete(tracker.url, tracker.token, [*apps, dag_app], deadline_s=180)
        stored = sparkrun.stored_events(tracker.db_url)
        linked, counts, jvm = 0, [], []
        for app in apps:
            doc = docs[app.name]
            counts.append(sparkrun.check_counts(app, doc))
            attempt = sparkrun.api(tracker.url, tracker.token, f"/api/v1/task-attempts/{doc['task_attempt_pk']}")
            where = {"dag_id": attempt["dag_run"]["dag_id"], "run_id": attempt["dag_run"]["run_id"],
                     "task_id": attempt["task_id"], "try_number": attempt["try_number"]}
            assert where == app.expected, (app.name, where, app.expected)
            assert not attempt["placeholder"] and not attempt["dag_run"]["placeholder"], attempt
            assert not attempt["dag_run"]["ambiguous"], attempt["dag_run"]
            assert [a["app_id"] for a in attempt["spark_apps"]] == [app.report["app_id"]], (app.name, attempt)
            linked += 1
            jvm.append(jvm_figures(app, stored))

        # the DAG run: the plugin-tracked spark-submit under its BashOperator attempt, the metric under its own
        page = sparkrun.api(tracker.url, tracker.token, "/api/v1/dag-runs", dag_id="rel_airflow",
                            run_id=dag_run["run_id"])
        (run,) = page["items"]
        tree = sparkrun.api(tracker.url, tracker.token, f"/api/v1/dag-runs/{run['id']}")
        by_task = {a["task_id"]: a for a in tree["task_attempts"]}
        assert set(by_task) == {"spark_submit", "log_metric"}, list(by_task)
        assert by_task["spark_submit"]["state"] == "success" and by_task["spark_submit"]["try_number"] == 1
        assert [a["app_id"] for a in by_task["spark_submit"]["spark_apps"]] == [dag_app.report["app_id"]]
        counts.append(sparkrun.check_counts(dag_app, docs["dag"]))
        jvm.append(jvm_figures(dag_app, stored))
        assert not by_task["log_metric"]["spark_apps"]
        assert {m["key"]: m["value"] for m in by_task["log_metric"]["metrics"]} == {"reliability_rows": 42}

        # nothing else: one tracker app per Spark app, no leftover placeholder runs, no doubled event
        app_ids = [a.report["app_id"] for a in [*apps, dag_app]]
        assert len(set(app_ids)) == len(app_ids), f"two apps got the same Spark app id: {app_ids}"
        runs = {dag_id: sparkrun.api(tracker.url, tracker.token, "/api/v1/dag-runs", dag_id=dag_id)["items"]
                for dag_id in {a.expected["dag_id"] for a in apps}}
        for dag_id, items in runs.items():
            assert sorted(r["run_id"] for r in items) == sorted({a.expected["run_id"] for a in apps
                                                                 if a.expected["dag_id"] == dag_id}), items
        total = stored[("*", "*")]
        assert total["rows"] == total["distinct"]
        assert sparkrun.rejected(tracker.url) == {}
    finally:
        tracker.stop()
    figures = {"apps": len(apps), "dag_runs": 1, "linked_correctly": linked + 1,
               "sent": _sum(jvm, "sent"), "acknowledged": _sum(jvm, "acknowledged"), "stored": _sum(jvm, "stored"),
               "lost": _sum(jvm, "lost"), "duplicated": _sum(counts, "duplicated") + total["rows"] - total["distinct"],
               "dropped": _sum(jvm, "dropped"), "pending_at_exit": _sum(jvm, "pending_at_exit"),
               "jobs": _sum(counts, "jobs"), "stages": _sum(counts, "stages"), "wall_s": round(wall, 1),
               "app_wall_s_max": round(max(a.wall_s or 0 for a in apps), 1)}
    record(f"spark_concurrent_{len(apps)}_apps_and_dag", figures)
    assert figures["lost"] == 0 and figures["dropped"] == 0 and figures["pending_at_exit"] == 0, figures


# ---------------------------------------------------------------------------------------------------- tracker killed

@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_spark_apps_across_a_tracker_kill(backend: str, tmp_path: Path) -> None:
    """SIGKILL the tracker while Spark apps run, restart it OUTAGE_S later: the JVM's bounded retry buffer carries
    the events across; everything the JVM reports sent is stored, nothing is dropped or left pending, and the
    tracker's jobs/stages/queries equal each app's own view."""
    if backend == "postgresql" and not FULL:
        pytest.skip("the PostgreSQL variant runs in the full form (scripts/reliability.py): CI time on 2 cores")
    tracker = _tracker(tmp_path, backend)
    apps: list[App] = []
    try:
        apps = [submit(f"kill-{i}", tmp_path / f"app{i}", url=tracker.url, token=tracker.token,
                       context={"dag_id": "rel_kill", "execution_date": "2026-11-22T10:00:00+00:00",
                                "task_id": f"task_{i}", "try_number": "1"},
                       app_args=("--jobs", "15", "--seconds", "45"))
                for i in range(KILL_APPS)]
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:  # every app is in its jobs: the outage hits apps that are emitting
            stored = sparkrun.stored_events(tracker.db_url)
            if sum(1 for k, c in stored.items() if k[0] == "jvm" and c["spark_job.end"]) >= len(apps):
                break
            assert all(a.process.poll() is None for a in apps), "an app ended before the tracker was killed"
            time.sleep(0.5)  # polling interval; the condition is the stored events
        else:
            raise AssertionError("the apps never reached the tracker")
        tracker.kill()
        killed_at = time.monotonic()
        running_at_kill = sum(1 for a in apps if a.process.poll() is None)
        time.sleep(OUTAGE_S)  # the outage itself
        tracker.start()
        outage = time.monotonic() - killed_at
        for app in apps:
            app.wait()
            app.ok()
        docs = sparkrun.wait_complete(tracker.url, tracker.token, apps, deadline_s=120)
        stored = sparkrun.stored_events(tracker.db_url)
        counts = [sparkrun.check_counts(app, docs[app.name]) for app in apps]
        jvm = [jvm_figures(app, stored) for app in apps]
    finally:
        for app in apps:
            if app.process.poll() is None:
                app.process.kill()
        tracker.stop()
    total = stored[("*", "*")]
    figures = {"apps": len(apps), "sent": _sum(jvm, "sent"), "acknowledged": _sum(jvm, "acknowledged"),
               "stored": _sum(jvm, "stored"), "lost": _sum(jvm, "lost"),
               "duplicated": _sum(counts, "duplicated") + total["rows"] - total["distinct"],
               "dropped": _sum(jvm, "dropped"), "pending_at_exit": _sum(jvm, "pending_at_exit"),
               "send_errors": _sum(jvm, "send_errors"), "outage_s": round(outage, 1),
               "running_at_kill": running_at_kill, "jobs": _sum(counts, "jobs"), "stages": _sum(counts, "stages")}
    record(f"spark_kill_restart_{backend}", figures)
    assert running_at_kill == len(apps), figures
    assert figures["send_errors"] > 0, "the JVM never saw the outage"
    assert figures["lost"] == 0 and figures["duplicated"] == 0, figures
    assert figures["dropped"] == 0 and figures["pending_at_exit"] == 0, figures  # carried across, all of it
    assert all(j["settled"] for j in jvm), jvm
    assert figures["stored"] == figures["acknowledged"] == figures["sent"], figures


# ---------------------------------------------------------------------------------------------------- slow + 500s

def test_spark_app_with_a_slow_failing_tracker_stays_within_its_bound(tmp_path: Path) -> None:
    """Every request delayed 2 s and 30% answered 500 (proxy): the tracked app finishes within the untracked run of
    the same app (started at the same moment) + the flush timeout + machine noise; spark.stop() itself within the
    untracked stop + the flush timeout + 1 s. What the JVM could not deliver is counted; what it did is stored."""
    tracker = _tracker(tmp_path)
    proxy = FaultyProxy(tracker.port, delay_s=2.0, error_rate=0.3)
    try:
        args = ("--jobs", "3")
        tracked = submit("slow-tracked", tmp_path / "tracked", url=proxy.url, token=tracker.token, app_args=args,
                         conf={"spark.runlink.flushTimeoutMs": str(FLUSH_MS)},
                         context={"dag_id": "rel_slow", "execution_date": "2026-11-22", "task_id": "t"})
        baseline = submit("slow-untracked", tmp_path / "untracked", url=None, token=None, app_args=args,
                          tracking=False)
        tracked.wait()
        baseline.wait()
        tracked.ok()
        baseline.ok()
        stored = sparkrun.stored_events(tracker.db_url)
    finally:
        proxy.close()
        tracker.stop()
    jvm = jvm_figures(tracked, stored)
    line = tracked.undelivered_line()
    flush_s = FLUSH_MS / 1000
    figures = {**jvm, "duplicated": stored[("*", "*")]["rows"] - stored[("*", "*")]["distinct"],
               "wall_s": round(tracked.wall_s or 0, 1), "untracked_wall_s": round(baseline.wall_s or 0, 1),
               "stop_s": tracked.report["stop_s"], "untracked_stop_s": baseline.report["stop_s"],
               "body_s": tracked.report["body_s"], "untracked_body_s": baseline.report["body_s"],
               "bound_s": round((baseline.wall_s or 0) + flush_s + WALL_NOISE_S, 1),
               "proxy_requests": proxy.requests, "proxy_500s": proxy.errors, "driver_log_undelivered": line}
    record("spark_slow_and_500", figures)
    assert proxy.errors > 0 and jvm["send_errors"] > 0, figures
    assert tracked.report["stop_s"] <= baseline.report["stop_s"] + flush_s + STOP_NOISE_S, figures
    assert (tracked.wall_s or 0) <= figures["bound_s"], figures
    assert jvm["lost"] == 0 and figures["duplicated"] == 0, figures  # acknowledged => stored
    assert jvm["stored"] <= jvm["sent"], figures  # nothing stored that the listener did not produce
    if line is not None:  # the listener's own part of spark.stop(): its flush, bounded
        assert line["waited_ms"] <= FLUSH_MS + 500, line
    if jvm["pending_at_exit"] or jvm["dropped"]:  # the undelivered events are counted where a user sees them
        assert line is not None, (jvm, tracked.log[-3000:])


# ---------------------------------------------------------------------------------------------------- oversized

def test_oversized_plan_and_schema_are_capped_not_rejected(tmp_path: Path) -> None:
    """A ~10 MB plan and a 10,000-column parquet write through real Spark with the JVM listeners, and
    log_dataframe of the wide frame and of a column whose type string exceeds the protocol's 4,000 chars: events
    arrive capped and flagged, the tracker rejects nothing, the app runs unaffected."""
    tracker = _tracker(tmp_path)
    try:
        app = submit("oversized", tmp_path / "app", url=tracker.url, token=tracker.token, driver_memory="1g",
                     app_args=("--jobs", "1", "--oversized", str(tmp_path / "data"), "--track-python")).wait()
        app.ok()
        (doc,) = sparkrun.wait_complete(tracker.url, tracker.token, [app], deadline_s=180).values()
        counts = sparkrun.check_counts(app, doc)
        deadline = time.monotonic() + 60
        while True:  # log_dataframe's events come through the Python client, apart from the JVM's
            doc = sparkrun.spark_app_doc(tracker.url, tracker.token, app.report["app_id"]) or doc
            datasets = _logged_datasets(tracker.db_url)
            if len(datasets) >= 2:
                break
            if time.monotonic() > deadline:
                break  # the assertions below say what is missing
            time.sleep(0.5)  # polling interval; the condition is what the tracker stored
        stored = sparkrun.stored_events(tracker.db_url)
        rejected = sparkrun.rejected(tracker.url)
    finally:
        tracker.stop()
    assert app.report["plan_chars"] > 8_000_000, app.report["plan_chars"]
    # the jar is on the driver: the JVM query listener reports each query once (track_session adds call sites)
    assert {q["listener"] for q in doc["queries"]} == {"jvm"}, [q["listener"] for q in doc["queries"]]
    (plan,) = [q for q in doc["queries"] if q.get("plan_truncated")]
    assert 0 < len(plan["plan_summary"]) <= 65536 and plan["callsite"], plan["callsite"]
    (write,) = [o for q in doc["queries"] for o in q["outputs"]
                if (o.get("path") or "").rstrip("/").endswith("/data/wide")]
    assert write["schema_truncated"] and len(write["schema"]) == 200, len(write["schema"])
    assert datasets["wide"]["schema_truncated"] and len(datasets["wide"]["schema"]) == 1000, datasets["wide"]
    assert datasets["wide"]["rows"] == 5
    long_type = datasets["long_type"]
    assert long_type["schema_truncated"] and len(long_type["schema"][0]["type"]) == 4000, long_type
    assert rejected == {}, rejected
    assert "dropped an invalid event" not in app.log
    jvm = jvm_figures(app, stored)
    record("spark_oversized", {**jvm, "plan_chars": app.report["plan_chars"], "columns": app.report["columns"],
                               "jvm_plan_summary_chars": len(plan["plan_summary"]),
                               "schema_fields_kept": len(write["schema"]),
                               "logged_schema_fields": len(datasets["wide"]["schema"]),
                               "rejected": rejected, "wall_s": round(app.wall_s or 0, 1), **counts})
    assert jvm["dropped"] == 0 and jvm["lost"] == 0 and jvm["pending_at_exit"] == 0, jvm


def _logged_datasets(db_url: str) -> dict[str, dict[str, Any]]:
    """Datasets logged from Python (log_dataframe: no SQL query), by name, as stored."""
    import json

    from sqlalchemy import create_engine, text

    from runlink.tracker.settings import normalize_db_url

    engine = create_engine(normalize_db_url(db_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT name, rows, schema, schema_truncated FROM dataset_ops "
                                     "WHERE sql_query_pk IS NULL")).all()
    finally:
        engine.dispose()
    return {r.name: {"rows": r.rows, "schema": json.loads(r.schema or "null"),
                     "schema_truncated": bool(r.schema_truncated)} for r in rows}
