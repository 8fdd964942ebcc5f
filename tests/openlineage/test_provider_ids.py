"""runlink's copy of the OpenLineage Airflow provider's run id formula equals the installed provider's own functions
(task instance and DAG run), on many inputs; the tracker module imports neither Airflow nor the provider.

The provider runs in a subprocess: this test package is itself named `openlineage` on pytest's path, which would
shadow openlineage-python in this process."""

from __future__ import annotations

import ast
import json
import os
import random
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from runlink.tracker.openlineage import ids as openlineage_ids

NAMESPACES = ["default", "prod-airflow", "airflow://scheduler.example:8080", "ns with spaces", "é-ns"]
DAG_IDS = ["etl", "my.dotted.dag", "dag_with-dash_1", "x" * 200]
TASK_IDS = ["extract", "group.inner_task", "t", "load-2"]

PROVIDER = r'''
import json, sys
from datetime import datetime
import pendulum
from airflow.providers.openlineage import conf
from airflow.providers.openlineage.plugins.adapter import OpenLineageAdapter
out = []
for case in json.load(sys.stdin):
    conf.namespace = lambda ns=case["namespace"]: ns  # what [openlineage] namespace would say
    when = datetime.fromisoformat(case["when"])
    if case["pendulum"]:
        when = pendulum.instance(when)
    if case["kind"] == "task":
        out.append(OpenLineageAdapter.build_task_instance_run_id(
            dag_id=case["dag_id"], task_id=case["task_id"], try_number=case["try_number"], logical_date=when,
            map_index=case["map_index"]))
    else:
        out.append(OpenLineageAdapter.build_dag_run_id(dag_id=case["dag_id"], logical_date=when,
                                                       clear_number=case["clear_number"]))
print(json.dumps(out))
'''


def _dates(rng: random.Random) -> list[datetime]:
    base = datetime(2026, 3, 1, 10, 0, tzinfo=timezone.utc)
    out: list[datetime] = [base, base.replace(microsecond=123456), base.replace(microsecond=999),
                           datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc),
                           datetime(2026, 3, 1, 12, 0, 0, tzinfo=timezone(timedelta(hours=1))),
                           datetime(2026, 7, 1, 9, 30, 0, 500, tzinfo=timezone(timedelta(hours=-7)))]
    out += [base + timedelta(microseconds=rng.randrange(0, 10 ** 15)) for _ in range(60)]
    return out


def _cases() -> list[dict[str, Any]]:
    rng = random.Random(14)
    cases = []
    for when in _dates(rng):
        for ns in NAMESPACES:
            cases.append({"kind": "task", "namespace": ns, "when": when.isoformat(), "pendulum": rng.random() < 0.5,
                          "dag_id": rng.choice(DAG_IDS), "task_id": rng.choice(TASK_IDS),
                          "try_number": rng.randrange(0, 12), "map_index": rng.choice([-1, 0, 1, 7, 1000])})
            cases.append({"kind": "dag", "namespace": ns, "when": when.isoformat(), "pendulum": rng.random() < 0.5,
                          "dag_id": rng.choice(DAG_IDS),
                          "clear_number": rng.randrange(0, openlineage_ids.MAX_CLEAR_NUMBER + 1)})
    return cases


def _provider_ids(cases: list[dict[str, Any]]) -> list[str]:
    pytest.importorskip("airflow.providers.openlineage")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "OPENLINEAGE"))}
    done = subprocess.run([sys.executable, "-c", PROVIDER], input=json.dumps(cases), capture_output=True, text=True,
                          env=env, timeout=300, cwd="/")
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_run_ids_equal_the_providers() -> None:
    cases = _cases()
    expected = _provider_ids(cases)
    assert len(expected) == len(cases) > 600
    for case, want in zip(cases, expected, strict=True):
        when = datetime.fromisoformat(case["when"])
        if case["kind"] == "task":
            got = openlineage_ids.task_run_id(case["namespace"], case["dag_id"], case["task_id"], case["try_number"],
                                              when, case["map_index"])
            assert want in openlineage_ids.task_run_ids(case["namespace"], case["dag_id"], case["task_id"],
                                                        case["try_number"], when, case["map_index"])
        else:
            got = openlineage_ids.dag_run_id(case["namespace"], case["dag_id"], when, case["clear_number"])
            assert want in openlineage_ids.dag_run_ids(case["namespace"], case["dag_id"], when)
        assert got == want, case
        assert openlineage_ids.uuid7_millis(got) == int(when.timestamp() * 1000)


def test_different_inputs_give_different_ids() -> None:
    when = datetime(2026, 3, 1, 10, tzinfo=timezone.utc)
    ids = {openlineage_ids.task_run_id(ns, "d", "t", n, when, m) for ns in ("a", "b") for n in (1, 2) for m in (-1, 0)}
    assert len(ids) == 8
    assert openlineage_ids.uuid7_millis("not-a-uuid") is None
    assert openlineage_ids.uuid7_millis("6f1c2b9e-3a9f-4d6e-8f1a-2b3c4d5e6f70") is None  # a v4 id
    assert openlineage_ids.job_name_splits("a.b.c") == [("a", "b.c"), ("a.b", "c")]


def test_tracker_module_imports_neither_airflow_nor_the_provider() -> None:
    tree = ast.parse(Path(openlineage_ids.__file__).read_text("utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                 and node.module}
    assert imported and not ({"airflow", "openlineage", "pendulum"} & imported)
