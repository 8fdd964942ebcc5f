"""EMR, Databricks, Dataproc: the exact request each operator sends, intercepted at the hook boundary (the only
mocks in these tests), then the injected spark-submit arguments / properties run by a REAL local spark-submit,
which must land under the task attempt that produced them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow_runs import HERE, attempts, dag_module, wait_for_tree

from support.spark_runs import listener_jar_or_skip

pytestmark = pytest.mark.airflow

JOB = str(HERE / "jobs" / "spark_job.py")
SPARK_SUBMIT = str(Path(sys.executable).parent / "spark-submit")
LISTENERS = "dev.runlink.spark.RunlinkSparkListener"


def _run(dag_file_dag: str) -> Any:
    dag = getattr(dag_module("runlink_provider_dags.py"), dag_file_dag, None)
    if dag is None:
        pytest.skip(f"provider for {dag_file_dag} not installed")
    return dag.test()


@pytest.fixture
def remote_jar(monkeypatch: pytest.MonkeyPatch) -> str:
    """The 'remote' jar location: a file: URI here, s3:// / gs:// / dbfs:/ on a real cluster."""
    uri = "file://" + listener_jar_or_skip()
    monkeypatch.setenv("RUNLINK_AIRFLOW_REMOTE_JAR", uri)
    return uri


def _clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """An environment with no Airflow context and no runlink settings: the conf alone must link the app."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("AIRFLOW_CTX_", "RUNLINK_", "SPARK_CONF_DIR", "SPARK_DIST_CLASSPATH"))}
    env.update(extra or {})
    return env


def _spark_submit(args: list[str], out: str, env: dict[str, str] | None = None) -> None:
    # generous JVM delivery bounds for a loaded machine (see tests/airflow/spark-conf/spark-defaults.conf)
    bounds = ["--conf", "spark.runlink.flushTimeoutMs=60000", "--conf", "spark.runlink.readTimeoutMs=30000"]
    result = subprocess.run([SPARK_SUBMIT, "--master", "local[2]", *bounds, *args], capture_output=True, text=True,
                            timeout=300, env=_clean_env(env))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]


def _linked(tracker: Any, dag_id: str, run_id: str, task_id: str) -> dict:
    tree = wait_for_tree(tracker, dag_id, run_id, lambda t: any(
        a["spark_apps"] and a["spark_apps"][0].get("end_time") and a["spark_apps"][0]["jobs"]
        for a in attempts(t, task_id)))
    (attempt,) = attempts(tree, task_id)
    return attempt


# ------------------------------------------------------------------ EMR

def test_emr_add_steps_payload_and_real_spark_submit(airflow_tracker, remote_jar, monkeypatch, tmp_path) -> None:
    emr = pytest.importorskip("airflow.providers.amazon.aws.hooks.emr")
    sent: list[list[dict]] = []

    def add_job_flow_steps(self, job_flow_id, steps=None, **kwargs):  # noqa: ANN001, ANN202
        sent.append(steps)
        return ["s-1"]

    fake_client = SimpleNamespace(describe_cluster=lambda **kw: {"Cluster": {"Id": "j-RUNLINKTEST"}})
    monkeypatch.setattr(emr.EmrHook, "add_job_flow_steps", add_job_flow_steps)
    monkeypatch.setattr(emr.EmrHook, "conn", property(lambda self: fake_client))
    monkeypatch.setattr(emr.EmrHook, "conn_region_name", property(lambda self: "us-east-1"))
    monkeypatch.setattr(emr.EmrHook, "conn_partition", property(lambda self: "aws"))
    dag_run = _run("rl_emr")
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"

    (steps,) = sent
    args = steps[0]["HadoopJarStep"]["Args"]
    assert args[0] == "spark-submit"
    confs = dict(args[i + 1].split("=", 1) for i, a in enumerate(args) if a == "--conf")
    assert confs["spark.extraListeners"] == f"com.example.UserListener,{LISTENERS}"  # appended, user's first
    assert confs["spark.jars"] == remote_jar
    assert confs["spark.env.AIRFLOW_CTX_DAG_ID"] == "rl_emr"
    assert confs["spark.env.AIRFLOW_CTX_TASK_ID"] == "add_steps"
    assert confs["spark.env.AIRFLOW_CTX_DAG_RUN_ID"] == dag_run.run_id
    assert confs["spark.env.AIRFLOW_CTX_TRY_NUMBER"] == "1"
    assert confs["spark.runlink.url"] == airflow_tracker.url
    assert confs["spark.runlink.token"] == airflow_tracker.token
    assert args[-2:] == ["s3://bucket/app.py", "OUT"]  # the application and its arguments stay last
    assert args.count("--conf") == len(confs)  # the user's listener conf was rewritten, not duplicated
    assert steps[1]["HadoopJarStep"]["Args"] == ["--x", "1"]  # not a spark-submit step: untouched

    # the same arguments, run by a real spark-submit (local master instead of the cluster)
    local = [a for a in args[1:] if a not in ("--deploy-mode", "cluster")]
    local = [a.replace("com.example.UserListener,", "") for a in local]  # no such class here
    local[-2:] = [JOB, str(tmp_path / "emr")]
    _spark_submit(local, str(tmp_path))
    attempt = _linked(airflow_tracker, "rl_emr", dag_run.run_id, "add_steps")
    assert attempt["spark_apps"][0]["stages"]


# ------------------------------------------------------------------ Databricks

def test_databricks_payloads_and_real_spark_submit(airflow_tracker, remote_jar, monkeypatch, tmp_path) -> None:
    hooks = pytest.importorskip("airflow.providers.databricks.hooks.databricks")
    submitted: list[dict] = []
    run_now: list[dict] = []
    monkeypatch.setattr(hooks.DatabricksHook, "submit_run", lambda self, json: submitted.append(json) or 1)
    monkeypatch.setattr(hooks.DatabricksHook, "run_now", lambda self, json: run_now.append(json) or 2)
    monkeypatch.setattr(hooks.DatabricksHook, "get_run_page_url", lambda self, run_id: f"https://dbc/run/{run_id}")
    dag_run = _run("rl_databricks")
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"

    new_cluster_run = next(p for p in submitted if "new_cluster" in p)
    cluster = new_cluster_run["new_cluster"]
    assert cluster["spark_conf"]["spark.sql.shuffle.partitions"] == "8"  # the user's value stays
    assert cluster["spark_conf"]["spark.extraListeners"].endswith(LISTENERS)
    assert cluster["spark_conf"]["spark.jars"] == remote_jar
    assert cluster["spark_conf"]["spark.env.AIRFLOW_CTX_TASK_ID"] == "submit_run"
    assert cluster["spark_env_vars"]["MY_VAR"] == "1"
    assert cluster["spark_env_vars"]["AIRFLOW_CTX_DAG_RUN_ID"] == dag_run.run_id
    assert cluster["spark_env_vars"]["RUNLINK_URL"] == airflow_tracker.url
    assert new_cluster_run["spark_python_task"] == {"python_file": "dbfs:/jobs/app.py", "parameters": ["OUT"]}

    existing = next(p for p in submitted if "existing_cluster_id" in p)
    params = existing["notebook_task"]["base_parameters"]
    assert params["x"] == "1" and params["AIRFLOW_CTX_TASK_ID"] == "existing_cluster"

    (now,) = run_now
    assert str(now["job_id"]) == "42"
    spark_params = now["spark_submit_params"]
    assert spark_params[-3:] == ["--class", "com.example.Main", "dbfs:/jobs/app.jar"]
    assert "spark.env.AIRFLOW_CTX_TASK_ID=run_now" in spark_params

    # the new cluster's spark_conf + spark_env_vars, run by a real spark-submit
    conf_args = [x for k, v in cluster["spark_conf"].items() for x in ("--conf", f"{k}={v}")]
    _spark_submit([*conf_args, JOB, str(tmp_path / "dbx")], str(tmp_path), env=cluster["spark_env_vars"])
    attempt = _linked(airflow_tracker, "rl_databricks", dag_run.run_id, "submit_run")
    assert attempt["spark_apps"][0]["jobs"]


# ------------------------------------------------------------------ Dataproc

def test_dataproc_payloads_and_real_spark_submit(airflow_tracker, remote_jar, monkeypatch, tmp_path) -> None:
    hooks = pytest.importorskip("airflow.providers.google.cloud.hooks.dataproc")
    jobs: list[dict] = []

    def submit_job(self, job, project_id=None, region=None, **kwargs):  # noqa: ANN001, ANN202
        jobs.append(job)
        return SimpleNamespace(reference=SimpleNamespace(job_id=f"job-{len(jobs)}"))

    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", '{"conn_type": "google_cloud_platform"}')
    monkeypatch.setattr(hooks.DataprocHook, "submit_job", submit_job)
    monkeypatch.setattr(hooks.DataprocHook, "wait_for_job", lambda self, *a, **k: None)
    dag_run = _run("rl_dataproc")
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "success"
    by_kind = {next(k for k in ("pyspark_job", "spark_job", "spark_sql_job") if k in job): job for job in jobs}
    assert set(by_kind) == {"pyspark_job", "spark_job", "spark_sql_job"}
    for kind, job in by_kind.items():
        spec = job[kind]
        props = spec["properties"]
        assert props["spark.extraListeners"] == LISTENERS
        assert props["spark.env.AIRFLOW_CTX_TASK_ID"] == kind
        assert props["spark.env.AIRFLOW_CTX_DAG_RUN_ID"] == dag_run.run_id
        assert remote_jar in spec["jar_file_uris"]
        assert "spark.jars" not in props  # Dataproc ships jar_file_uris itself
    assert by_kind["pyspark_job"]["pyspark_job"]["properties"]["spark.sql.shuffle.partitions"] == "8"
    assert by_kind["spark_job"]["spark_job"]["jar_file_uris"][0] == "gs://bucket/app.jar"

    # the pyspark job's properties and jar_file_uris, as Dataproc hands them to spark-submit
    spec = by_kind["pyspark_job"]["pyspark_job"]
    conf_args = [x for k, v in spec["properties"].items() for x in ("--conf", f"{k}={v}")]
    _spark_submit([*conf_args, "--jars", ",".join(spec["jar_file_uris"]), JOB, str(tmp_path / "dp")], str(tmp_path))
    attempt = _linked(airflow_tracker, "rl_dataproc", dag_run.run_id, "pyspark_job")
    assert attempt["spark_apps"][0]["jobs"]
