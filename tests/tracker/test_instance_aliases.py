"""Instance aliases through the real API and CLI: `runlink airflow alias NAME UID` relinks what was stored under
the alias (a migrated deployment, Databand's instance UUID) to the instance, and later events follow."""

from __future__ import annotations

import os
import subprocess
import sys

import requests
from builders import event

from support.tracker import ROOT

TS = "2026-11-21T00:00:00+00:00"
RUN = "scheduled__2026-11-21T00:00:00+00:00"


def _cli(tracker, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RUNLINK_URL": tracker.url, "RUNLINK_TOKEN": tracker.token,
           "PYTHONPATH": str(ROOT / "python")}
    return subprocess.run([sys.executable, "-m", "runlink", *args], capture_output=True, text=True, env=env,
                          timeout=120)


def _register(tracker, name: str, uid: str) -> None:
    response = requests.post(tracker.url + "/api/v1/airflow-instances", headers=tracker.headers(), timeout=30,
                             json={"name": name, "url": "http://airflow.invalid:8080", "uid": uid,
                                   "auth_kind": "none"})
    assert response.status_code == 201, response.text


def _runs(tracker, dag_id: str) -> list[dict]:
    return tracker.get_json("/api/v1/dag-runs", dag_id=dag_id)["items"]


def test_an_alias_relinks_stored_events_and_later_ones(tracker, unique) -> None:
    dag, prod, databand = f"alias_{unique}", f"airflow-{unique}", f"databand-{unique}"
    _register(tracker, f"prod-{unique}", prod)
    task = {"dag_id": dag, "execution_date": TS, "dag_run_id": RUN, "task_id": "t", "try_number": "1"}
    first = [
        event("task_attempt.start", {"state": "running", "start_date": "2026-11-21T00:01:00Z"}, agent="airflow",
              context={**task, "uid": prod}),
        event("metric", {"key": "before_alias", "value": 1}, context={**task, "uid": databand}),
        event("dag.definition", {"dag_id": dag, "schedule": "@daily"}, context={"uid": databand}, agent="syncer"),
    ]
    assert tracker.post_events(first).status_code == 202
    assert sorted(r["uid"] for r in _runs(tracker, dag)) == sorted([prod, databand])

    result = _cli(tracker, "airflow", "alias", f"prod-{unique}", databand)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"prod-{unique}: uid {prod}, aliases {databand}"
    again = _cli(tracker, "airflow", "alias", f"prod-{unique}", databand)  # idempotent
    assert again.returncode == 0 and again.stdout == result.stdout

    late = event("metric", {"key": "after_alias", "value": 2}, context={**task, "uid": databand})
    assert tracker.post_events([late]).status_code == 202
    runs = _runs(tracker, dag)
    assert [r["uid"] for r in runs] == [prod]
    tree = tracker.get_json(f"/api/v1/dag-runs/{runs[0]['id']}")
    (attempt,) = tree["task_attempts"]
    assert sorted(m["key"] for m in attempt["metrics"]) == ["after_alias", "before_alias"]
    instance = tracker.get_json(f"/api/v1/airflow-instances/prod-{unique}")
    assert instance["aliases"] == [databand]
    listed = {i["uid"]: i for i in tracker.get_json("/api/v1/views/instances")["items"]}
    assert databand not in listed and listed[prod]["aliases"] == [databand] and listed[prod]["dags"] == 1


def test_alias_mistakes_are_refused_with_the_field(tracker, unique) -> None:
    _register(tracker, f"a-{unique}", f"uid-a-{unique}")
    _register(tracker, f"b-{unique}", f"uid-b-{unique}")

    def post(name: str, uid: str, token: str | None = "") -> requests.Response:
        return requests.post(f"{tracker.url}/api/v1/airflow-instances/{name}/aliases", json={"uid": uid},
                             headers=tracker.headers(token), timeout=30)

    own = post(f"a-{unique}", f"uid-a-{unique}")
    assert own.status_code == 422 and own.json()["detail"]["field"] == "uid"
    other = post(f"a-{unique}", f"uid-b-{unique}")
    assert other.status_code == 409 and "instance" in other.json()["detail"]["message"]
    assert post(f"a-{unique}", f"shared-{unique}").status_code == 200
    taken = post(f"b-{unique}", f"shared-{unique}")
    assert taken.status_code == 409
    assert post(f"nope-{unique}", "x").status_code == 404
    assert post(f"a-{unique}", "x", token=tracker.make_token("ingest")).status_code == 403
    cli = _cli(tracker, "airflow", "alias", f"b-{unique}", f"shared-{unique}")
    assert cli.returncode == 1 and cli.stderr.count("\n") == 1 and "Traceback" not in cli.stderr
