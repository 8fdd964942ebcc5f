"""An OpenLineage-only child job (openlineage-python's real client, HTTP transport -> POST /api/v1/lineage) of a task
that only runlink's own events tracked: parent and root are the ids the OpenLineage Airflow provider gives that
task attempt and DAG run (its real `lineage_parent_id` / `lineage_root_parent_id` macros, as inside the task while
the provider itself sends to another backend). The tracker recomputes those ids and files the child under the
attempt with its datasets (each once) and its failure; a child that arrives first waits (listed as pending) and is
linked when the attempt arrives; one whose parent never arrives is listed as unlinked after the TTL.

The client and the provider run in a subprocess (a child job is another process; also, this test package is named
`openlineage` on pytest's path and would shadow openlineage-python here)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from runlink.protocol.events import make_event
from support.ui_pages import ui_page

T0 = "2026-03-01T10:00:00.000000+00:00"

CHILD_JOB = r'''
import json, sys
from datetime import datetime
from types import SimpleNamespace
from airflow.providers.openlineage.plugins import macros
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, parent_run
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

spec = json.loads(sys.argv[1])
logical = datetime.fromisoformat(spec["logical_date"]) if spec["logical_date"] else None
dag_run = SimpleNamespace(dag_id=spec["dag_id"], logical_date=logical,
                          run_after=datetime.fromisoformat(spec["run_after"]), clear_number=0, conf={},
                          run_id=spec["run_id"])
ti = SimpleNamespace(dag_id=spec["dag_id"], task_id=spec["task_id"], try_number=spec["try_number"], map_index=-1,
                     dag_run=dag_run, logical_date=dag_run.logical_date,
                     get_template_context=lambda: {"dag_run": dag_run})  # the running task's view of itself
parent_ns, parent_name, parent_id = macros.lineage_parent_id(ti).split("/")
root_ns, root_name, root_id = macros.lineage_root_parent_id(ti).split("/")
print("IDS=" + json.dumps({"parent": parent_id, "root": root_id, "parent_name": parent_name}), flush=True)
if spec.get("ids_only"):
    sys.exit(0)
client = OpenLineageClient(transport=HttpTransport(HttpConfig(
    url=spec["url"], endpoint="api/v1/lineage", timeout=30,
    auth=ApiKeyTokenProvider({"apiKey": spec["token"]}))))
parent = parent_run.ParentRunFacet(
    run=parent_run.Run(runId=parent_id), job=parent_run.Job(namespace=parent_ns, name=parent_name),
    root=parent_run.Root(run=parent_run.RootRun(runId=root_id), job=parent_run.RootJob(namespace=root_ns,
                                                                                      name=root_name)))
job = Job(namespace="dbt", name=spec["job_name"])
source = InputDataset(namespace="postgres://db:5432", name="public.orders")
target = OutputDataset(namespace="postgres://db:5432", name="public.orders_daily")
if "START" in spec["events"]:
    client.emit(RunEvent(eventType=RunState.START, eventTime="2026-03-01T10:00:05+00:00", job=job,
                         run=Run(runId=spec["child_run"], facets={"parent": parent}), inputs=[source],
                         producer="https://example.com/child-job"))
if "FAIL" in spec["events"]:
    error = error_message_run.ErrorMessageRunFacet(message="relation orders_daily: password=hunter2 rejected",
                                                   programmingLanguage="SQL", stackTrace="at model orders_daily")
    client.emit(RunEvent(eventType=RunState.FAIL, eventTime="2026-03-01T10:00:09+00:00", job=job,
                         run=Run(runId=spec["child_run"], facets={"parent": parent, "errorMessage": error}),
                         inputs=[source], outputs=[target], producer="https://example.com/child-job"))
client.close()
'''


def run_child_job(tracker: Any, dag_id: str, *, events: tuple[str, ...], child_run: str,
                  ids_only: bool = False, logical_date: str | None = T0,
                  run_id: str = "scheduled__2026-03-01T10:00:00+00:00") -> dict[str, str]:
    """The child job's process: the provider's macros for (dag_id, transform, try 1, T0), then the client's events.
    Without a logical date (an Airflow 3 manual run) the provider uses run_after, the time in the run id."""
    pytest.importorskip("airflow.providers.openlineage")
    spec = {"dag_id": dag_id, "task_id": "transform", "try_number": 1, "logical_date": logical_date,
            "run_after": logical_date or run_id.split("__", 1)[1],
            "run_id": run_id, "url": tracker.url, "token": tracker.token,
            "job_name": f"models.orders_daily_{dag_id}", "events": list(events), "child_run": child_run,
            "ids_only": ids_only}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    env["OPENLINEAGE_NAMESPACE"] = "prod-airflow"  # the provider's namespace: the child's parent facet carries it
    done = subprocess.run([sys.executable, "-c", CHILD_JOB, json.dumps(spec)], capture_output=True, text=True,
                          env=env, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr[-4000:]
    line = [x for x in done.stdout.splitlines() if x.startswith("IDS=")][0]
    return json.loads(line[4:])


def runlink_attempt(tracker: Any, dag_id: str, *, logical_date: str | None = T0,
                    run_id: str = "scheduled__2026-03-01T10:00:00+00:00") -> None:
    """What runlink's own Airflow plugin reports for the task (no OpenLineage at all)."""
    ctx = {"dag_id": dag_id, "task_id": "transform", "try_number": "1", "dag_run_id": run_id}
    if logical_date:
        ctx["logical_date"] = logical_date
    events = [make_event("task_attempt.start", {"state": "running", "start_date": "2026-03-01T10:00:01Z"},
                         context=ctx, agent="airflow", time="2026-03-01T10:00:01Z"),
              make_event("task_attempt.end", {"state": "success", "end_date": "2026-03-01T10:00:30Z"},
                         context=ctx, agent="airflow", time="2026-03-01T10:00:30Z")]
    response = tracker.post_events(events)
    assert response.status_code == 202, response.text


def attempt_of(tracker: Any, dag_id: str) -> dict[str, Any]:
    page = tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)
    assert len(page["items"]) == 1, page
    attempts = tracker.get_json(f"/api/v1/dag-runs/{page['items'][0]['id']}")["task_attempts"]
    assert [(a["task_id"], a["try_number"]) for a in attempts] == [("transform", 1)]
    return attempts[0]


def waiting(tracker: Any, status: str, child_run: str) -> list[dict[str, Any]]:
    body = tracker.get_json(f"/api/v1/lineage/{status}", limit=1000)
    return [item for item in body["items"] if item["run_id"] == child_run]


def runlink_cli(tracker: Any, *args: str) -> str:
    """`runlink ...` as a user runs it (token from RUNLINK_TOKEN); its stdout."""
    env = {**os.environ, "RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": tracker.token}
    done = subprocess.run([sys.executable, "-m", "runlink", *args], capture_output=True, text=True, env=env,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def ui_waiting_counts(tracker: Any) -> tuple[int, int]:
    """(pending, unlinked) as the instances page of the web UI shows them."""
    page = ui_page(tracker, "/ui/instances")
    found = re.search(r'id="openlineage-waiting">[^<]*<strong>(\d+)</strong> pending, <strong>(\d+)</strong>', page)
    assert found is not None, page[-2000:]
    return int(found.group(1)), int(found.group(2))


def check_child(tracker: Any, dag_id: str, child_run: str, ids: dict[str, str]) -> None:
    attempt = attempt_of(tracker, dag_id)
    children = attempt["openlineage_runs"]
    assert [c["run_id"] for c in children] == [child_run], json.dumps(attempt)[:3000]
    child = children[0]
    assert (child["job_namespace"], child["job_name"]) == ("dbt", f"models.orders_daily_{dag_id}")
    assert child["state"] == "failed"
    assert child["start_time"] == "2026-03-01T10:00:05.000000Z" and child["end_time"] == "2026-03-01T10:00:09.000000Z"
    assert "relation orders_daily" in child["error"]["message"] and "hunter2" not in json.dumps(attempt)
    assert child["parent_run_id"] == ids["parent"] and child["root_run_id"] == ids["root"]
    assert sorted((d["operation"], d["uri"]) for d in child["datasets"]) == [
        ("read", "postgres://db:5432/public.orders"), ("write", "postgres://db:5432/public.orders_daily")]
    # the attempt's own dataset list: each dataset once although START and FAIL both list the input
    ops = sorted((d["operation"], d["uri"]) for d in attempt["datasets"])
    assert ops == [("read", "postgres://db:5432/public.orders"), ("write", "postgres://db:5432/public.orders_daily")]
    assert not waiting(tracker, "pending", child_run) and not waiting(tracker, "unlinked", child_run)


def test_child_of_runlink_only_task_lands_under_its_attempt(tracker: Any, unique: str) -> None:
    dag_id = f"olc_{unique}"
    child_run = "01890000-0000-7000-8000-" + unique.ljust(12, "0")[:12]
    runlink_attempt(tracker, dag_id)
    ids = run_child_job(tracker, dag_id, events=("START", "FAIL"), child_run=child_run)
    check_child(tracker, dag_id, child_run, ids)
    html = ui_page(tracker, f"/ui/task-attempts/{attempt_of(tracker, dag_id)['id']}")
    table = html[html.index('id="openlineage-runs"'):]
    assert f"models.orders_daily_{dag_id}" in table and "relation orders_daily" in table and child_run in table
    # a replay (the client retrying both events) changes nothing
    run_child_job(tracker, dag_id, events=("START", "FAIL"), child_run=child_run)
    check_child(tracker, dag_id, child_run, ids)


def test_child_first_waits_then_links_in_any_order(tracker: Any, unique: str) -> None:
    dag_id = f"olw_{unique}"
    child_run = "01890000-0000-7000-8000-" + unique.ljust(12, "1")[:12]
    ids = run_child_job(tracker, dag_id, events=("FAIL",), child_run=child_run)  # FAIL before START, before runlink
    pending = waiting(tracker, "pending", child_run)
    assert [(p["event_type"], p["parent_run_id"], p["parent_job_name"]) for p in pending] == [
        ("FAIL", ids["parent"], f"{dag_id}.transform")]
    assert "raw" not in pending[0]
    cli = runlink_cli(tracker, "lineage", "pending")
    assert ids["parent"] in cli and f"{dag_id}.transform" in cli and "pending" in cli.splitlines()[0]
    assert ui_waiting_counts(tracker)[0] >= 1
    runlink_attempt(tracker, dag_id)  # the attempt arrives: the waiting event is linked by the ingest hook
    deadline = time.monotonic() + 30
    while waiting(tracker, "pending", child_run) and time.monotonic() < deadline:
        time.sleep(0.2)  # polling interval; the condition is the listing
    run_child_job(tracker, dag_id, events=("START",), child_run=child_run)
    check_child(tracker, dag_id, child_run, ids)


def test_unknown_parent_expires_to_unlinked_and_still_links(tracker_factory: Any, unique: str) -> None:
    tracker = tracker_factory(extra_env={"RUNLINK_OPENLINEAGE_PENDING_TTL_S": "4"})
    dag_id = f"olx_{unique}"
    child_run = "01890000-0000-7000-8000-" + unique.ljust(12, "2")[:12]
    ids = run_child_job(tracker, dag_id, events=("START", "FAIL"), child_run=child_run)
    # listed at once (as pending, or already unlinked if the child job's process outlived the short TTL)
    listed = waiting(tracker, "pending", child_run) + waiting(tracker, "unlinked", child_run)
    assert sorted(p["event_type"] for p in listed) == ["FAIL", "START"]
    deadline = time.monotonic() + 30
    while len(waiting(tracker, "unlinked", child_run)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # polling interval; the condition is the TTL having passed
    unlinked = waiting(tracker, "unlinked", child_run)
    assert {u["event_type"] for u in unlinked} == {"START", "FAIL"} and all(u["unlinked_at"] for u in unlinked)
    assert not waiting(tracker, "pending", child_run)
    counts = tracker.get_json("/api/v1/lineage/unlinked")["counts"]
    assert counts == {"pending": 0, "unlinked": 2}
    assert ui_waiting_counts(tracker) == (0, 2)
    cli = runlink_cli(tracker, "lineage", "unlinked")
    assert cli.splitlines()[0].startswith("0 pending, 2 unlinked") and cli.count(ids["parent"]) == 2
    # never dropped: the parent arriving late still links them
    runlink_attempt(tracker, dag_id)
    check_child(tracker, dag_id, child_run, ids)


def test_child_of_a_run_without_logical_date(tracker: Any, unique: str) -> None:
    """Airflow 3 runs may have no logical date: the provider's ids then use run_after (the time in the run id)."""
    dag_id = f"olr_{unique}"
    child_run = "01890000-0000-7000-8000-" + unique.ljust(12, "3")[:12]
    run_id = "manual__2026-03-01T10:00:07.123456+00:00"
    runlink_attempt(tracker, dag_id, logical_date=None, run_id=run_id)
    ids = run_child_job(tracker, dag_id, events=("START", "FAIL"), child_run=child_run, logical_date=None,
                        run_id=run_id)
    check_child(tracker, dag_id, child_run, ids)
