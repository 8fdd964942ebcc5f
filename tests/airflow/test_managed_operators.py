"""Managed-Spark operators (issue 16): the exact request each operator sends, intercepted at its hook boundary
(the only mocks here; real provider operator classes run under dag.test() with the runlink listener), and, where
the operator can run on this machine, the injected conf run for real and linked to the task attempt:
SparkSqlOperator with the local `spark-sql`, `@task.pyspark` in a task process of its own, the pod spec of
KubernetesPodOperator, and the request body LivyOperator posts to a local HTTP endpoint standing in for Livy."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow_runs import HERE, attempts, dag_module, wait_for_tree
from test_cloud_operators import JOB, _linked, _spark_submit

from support.spark_runs import listener_jar_or_skip

pytestmark = pytest.mark.airflow

LISTENERS = "dev.runlink.spark.RunlinkSparkListener"
QUERY_LISTENERS = "dev.runlink.spark.RunlinkQueryListener"
USER_LISTENER = "com.example.UserListener"


def _dag(dag_id: str, provider: str) -> Any:
    dag = getattr(dag_module("runlink_managed_dags.py"), dag_id, None)
    if dag is None:
        pytest.skip(f"{provider} is not installed")
    return dag


def _run(dag_id: str, provider: str) -> Any:
    dag_run = _dag(dag_id, provider).test()
    return dag_run


def _state(dag_run: Any) -> str:
    return str(getattr(dag_run.state, "value", dag_run.state))


def _task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def _context(props: dict[str, str], task_id: str, run_id: str, dag_id: str, try_number: str | None = "1") -> None:
    assert props["spark.env.AIRFLOW_CTX_DAG_ID"] == dag_id
    assert props["spark.env.AIRFLOW_CTX_TASK_ID"] == task_id
    assert props["spark.env.AIRFLOW_CTX_DAG_RUN_ID"] == run_id
    if try_number is not None:
        assert props["spark.env.AIRFLOW_CTX_TRY_NUMBER"] == try_number


def _conf_words(words: list[str]) -> dict[str, str]:
    return dict(words[i + 1].split("=", 1) for i, w in enumerate(words) if w == "--conf")


@pytest.fixture
def remote_jar(monkeypatch: pytest.MonkeyPatch) -> str:
    """The 'remote' jar location: a file: URI here, s3:// / gs:// / hdfs:// / local:/// on a real cluster."""
    uri = "file://" + listener_jar_or_skip()
    monkeypatch.setenv("RUNLINK_AIRFLOW_REMOTE_JAR", uri)
    return uri


# ------------------------------------------------------------------ Dataproc batches and inline templates

def test_dataproc_batch_and_inline_template_payloads(airflow_tracker, remote_jar, monkeypatch, tmp_path) -> None:
    hooks = pytest.importorskip("airflow.providers.google.cloud.hooks.dataproc")
    from google.cloud.dataproc_v1 import Batch

    batches: dict[str, Any] = {}
    templates: list[dict] = []

    def create_batch(self, region, project_id, batch, batch_id=None, **kwargs):  # noqa: ANN001, ANN202
        batches[batch_id] = batch
        return SimpleNamespace(metadata=SimpleNamespace(batch=f"projects/{project_id}/batches/{batch_id}"))

    def instantiate(self, template, region, project_id=None, **kwargs):  # noqa: ANN001, ANN202
        templates.append(template)
        return SimpleNamespace(operation=SimpleNamespace(name="projects/proj/operations/wf-1"))

    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", '{"conn_type": "google_cloud_platform"}')
    monkeypatch.setattr(hooks.DataprocHook, "create_batch", create_batch)
    monkeypatch.setattr(hooks.DataprocHook, "get_batch", lambda self, **kw: Batch())
    monkeypatch.setattr(hooks.DataprocHook, "instantiate_inline_workflow_template", instantiate)
    monkeypatch.setattr(hooks.DataprocHook, "wait_for_operation", lambda self, **kw: None)
    dag_run = _run("managed_dataproc", "apache-airflow-providers-google")
    assert _state(dag_run) == "success", _task_states(dag_run)

    batch = batches["b1"]
    props = batch["runtime_config"]["properties"]
    assert props["spark.sql.shuffle.partitions"] == "8"  # the user's key kept
    assert props["spark.extraListeners"] == f"{USER_LISTENER},{LISTENERS}"  # appended, the user's first
    assert props["spark.sql.queryExecutionListeners"] == QUERY_LISTENERS
    assert "spark.jars" not in props  # the jar travels in jar_file_uris
    assert batch["pyspark_batch"]["jar_file_uris"] == [remote_jar]
    assert batch["pyspark_batch"]["main_python_file_uri"] == "gs://bucket/app.py"
    _context(props, "batch", dag_run.run_id, "managed_dataproc")
    assert props["spark.runlink.url"] == airflow_tracker.url
    assert props["spark.runlink.token"] == airflow_tracker.token

    proto = batches["b2"]  # a Batch protobuf: filled in a copy, of the same type
    assert isinstance(proto, Batch)
    proto_props = dict(proto.runtime_config.properties)
    assert proto_props["spark.executor.cores"] == "2"
    assert proto_props["spark.extraListeners"] == LISTENERS
    _context(proto_props, "batch_proto", dag_run.run_id, "managed_dataproc")
    assert list(proto.spark_batch.jar_file_uris) == ["gs://bucket/app.jar", remote_jar]

    (template,) = templates
    jobs = {job["step_id"]: job for job in template["jobs"]}
    for step, kind in (("py", "pyspark_job"), ("jar", "spark_job")):
        spec = jobs[step][kind]
        assert spec["properties"]["spark.extraListeners"] == LISTENERS
        _context(spec["properties"], "template", dag_run.run_id, "managed_dataproc")
        assert spec["jar_file_uris"][-1] == remote_jar
    assert jobs["py"]["pyspark_job"]["properties"]["spark.sql.shuffle.partitions"] == "8"
    assert jobs["jar"]["spark_job"]["jar_file_uris"] == ["gs://bucket/app.jar", remote_jar]
    assert jobs["hive"] == {"step_id": "hive", "hive_job": {"query_file_uri": "gs://bucket/q.hql"}}  # untouched

    # the batch's properties and jar URIs, as Dataproc Serverless hands them to the driver
    local = {k: v for k, v in props.items() if k != "spark.extraListeners"}
    local["spark.extraListeners"] = LISTENERS  # com.example.UserListener does not exist here
    conf_args = [x for k, v in local.items() for x in ("--conf", f"{k}={v}")]
    _spark_submit([*conf_args, "--jars", remote_jar, JOB, str(tmp_path / "batch")], str(tmp_path))
    attempt = _linked(airflow_tracker, "managed_dataproc", dag_run.run_id, "batch")
    assert attempt["spark_apps"][0]["jobs"]


# ------------------------------------------------------------------ EMR Serverless, EMR on EKS, Glue

def test_emr_serverless_eks_and_glue_payloads(airflow_tracker, remote_jar, monkeypatch, tmp_path) -> None:
    emr = pytest.importorskip("airflow.providers.amazon.aws.hooks.emr")
    glue = pytest.importorskip("airflow.providers.amazon.aws.hooks.glue")
    started: dict[str, dict] = {}
    eks: list[tuple] = []
    glue_args: list[dict] = []

    def start_job_run(**kwargs: Any) -> dict:
        started[kwargs["name"]] = kwargs
        return {"ResponseMetadata": {"HTTPStatusCode": 200}, "jobRunId": f"run-{len(started)}"}

    client = SimpleNamespace(get_application=lambda **kw: {"application": {"state": "STARTED"}},
                             start_job_run=start_job_run)
    monkeypatch.setattr(emr.EmrServerlessHook, "conn", property(lambda self: client))
    for hook in (emr.EmrServerlessHook, emr.EmrContainerHook, glue.GlueJobHook):
        monkeypatch.setattr(hook, "conn_region_name", property(lambda self: "us-east-1"))
        monkeypatch.setattr(hook, "conn_partition", property(lambda self: "aws"))
    monkeypatch.setattr(emr.EmrContainerHook, "submit_job", lambda self, *args, **kw: eks.append(args) or "eks-1")
    monkeypatch.setattr(glue.GlueJobHook, "initialize_job",
                        lambda self, script_arguments=None, run_kwargs=None: glue_args.append(script_arguments)
                        or {"JobRunId": "jr-1"})
    dag_run = _run("managed_emr", "apache-airflow-providers-amazon")
    assert _state(dag_run) == "success", _task_states(dag_run)
    run_id = dag_run.run_id

    job = started["job"]
    params = shlex.split(job["jobDriver"]["sparkSubmit"]["sparkSubmitParameters"])
    in_params = _conf_words(params)
    assert in_params["spark.executor.cores"] == "2"
    assert in_params["spark.extraListeners"] == f"{USER_LISTENER},{LISTENERS}"  # rewritten where the user set it
    assert params[params.index("--jars") + 1] == f"s3://bucket/dep.jar,{remote_jar}"  # --jars replaces spark.jars
    (defaults,) = [c for c in job["configurationOverrides"]["applicationConfiguration"]
                   if c["classification"] == "spark-defaults"]
    props = defaults["properties"]
    assert props["spark.sql.shuffle.partitions"] == "8"
    assert "spark.extraListeners" not in props  # sparkSubmitParameters holds it (and wins over spark-defaults)
    assert props["spark.sql.queryExecutionListeners"] == QUERY_LISTENERS
    assert props["spark.jars"] == remote_jar
    _context(props, "serverless", run_id, "managed_emr")
    assert props["spark.runlink.token"] == airflow_tracker.token
    assert job["jobDriver"]["sparkSubmit"]["entryPointArguments"] == ["OUT"]

    plain = started["job2"]  # no overrides at all: the classification is created
    (plain_defaults,) = plain["configurationOverrides"]["applicationConfiguration"]
    assert plain_defaults["classification"] == "spark-defaults"
    assert plain_defaults["properties"]["spark.extraListeners"] == LISTENERS
    assert "sparkSubmitParameters" not in plain["jobDriver"]["sparkSubmit"]
    _context(plain_defaults["properties"], "serverless_plain", run_id, "managed_emr")

    (eks_args,) = eks  # submit_job(name, role, release_label, job_driver, configuration_overrides, ...)
    driver, overrides = eks_args[3], eks_args[4]
    assert driver["sparkSubmitJobDriver"]["sparkSubmitParameters"] == "--conf spark.executor.instances=2"
    assert overrides["monitoringConfiguration"] == {"persistentAppUI": "ENABLED"}
    eks_props = overrides["applicationConfiguration"][0]["properties"]
    assert eks_props["spark.extraListeners"] == LISTENERS
    _context(eks_props, "eks", run_id, "managed_emr")

    (args,) = glue_args
    assert args["--day"] == "2024-01-01"
    assert args["--extra-jars"] == f"s3://bucket/dep.jar,{remote_jar}"  # the job default kept, ours appended
    glue_conf = _conf_words(["--conf", *shlex.split(args["--conf"])])
    assert args["--conf"].startswith("spark.sql.shuffle.partitions=8 --conf ")  # the user's first
    assert glue_conf["spark.extraListeners"] == LISTENERS
    assert "spark.jars" not in glue_conf  # --extra-jars ships it
    _context(glue_conf, "glue", run_id, "managed_emr")

    # the Serverless job as EMR runs it: spark-defaults first, then sparkSubmitParameters over them
    local = dict(props)
    local.update(in_params)
    local["spark.extraListeners"] = LISTENERS
    conf_args = [x for k, v in local.items() for x in ("--conf", f"{k}={v}")]
    _spark_submit([*conf_args, JOB, str(tmp_path / "serverless")], str(tmp_path))
    attempt = _linked(airflow_tracker, "managed_emr", run_id, "serverless")
    assert attempt["spark_apps"][0]["jobs"]


# ------------------------------------------------------------------ Livy (a local HTTP endpoint standing in for Livy)

class _LivyStandIn(BaseHTTPRequestHandler):
    bodies: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        length = int(self.headers.get("Content-Length") or 0)
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self._answer({"id": len(type(self).bodies) - 1, "state": "starting"})

    def do_GET(self) -> None:  # noqa: N802
        self._answer({"id": 0, "state": "running", "appId": "application_1_0001"})

    def _answer(self, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def livy_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[dict]]:
    _LivyStandIn.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _LivyStandIn)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AIRFLOW_CONN_LIVY_LOCAL", json.dumps(
        {"conn_type": "livy", "host": "127.0.0.1", "port": server.server_address[1], "schema": "http"}))
    yield _LivyStandIn.bodies
    server.shutdown()


def test_livy_request_body_and_real_spark_submit(airflow_tracker, remote_jar, livy_endpoint, monkeypatch,
                                                 tmp_path) -> None:
    pytest.importorskip("airflow.providers.apache.livy.hooks.livy")
    monkeypatch.setenv("RUNLINK_TEST_SPARK_JOB", JOB)
    dag_run = _run("managed_livy", "apache-airflow-providers-apache-livy")
    assert _state(dag_run) == "success", _task_states(dag_run)

    (body,) = livy_endpoint  # the JSON LivyHook POSTed to /batches
    assert body["file"] == JOB
    assert body["jars"] == [remote_jar]
    conf = body["conf"]
    assert conf["spark.sql.shuffle.partitions"] == "4"
    assert conf["spark.extraListeners"] == LISTENERS
    assert "spark.jars" not in conf  # Livy turns `jars` into spark.jars
    _context(conf, "livy", dag_run.run_id, "managed_livy")
    assert conf["spark.runlink.token"] == airflow_tracker.token

    # what Livy runs for this body: spark-submit --conf (conf) --jars (jars) file args
    conf_args = [x for k, v in conf.items() for x in ("--conf", f"{k}={v}")]
    _spark_submit([*conf_args, "--jars", ",".join(body["jars"]), body["file"], str(tmp_path / "livy")],
                  str(tmp_path))
    attempt = _linked(airflow_tracker, "managed_livy", dag_run.run_id, "livy")
    assert attempt["spark_apps"][0]["stages"]


# ------------------------------------------------------------------ Kubernetes: SparkApplication and pod spec

def test_spark_kubernetes_and_pod_payloads_and_real_run(airflow_tracker, remote_jar, monkeypatch,
                                                         tmp_path) -> None:
    pytest.importorskip("airflow.providers.cncf.kubernetes.operators.pod")
    from airflow.providers.cncf.kubernetes.hooks.kubernetes import KubernetesHook
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import CustomObjectsApi

    applications: list[dict] = []
    pods: list[Any] = []

    def create_object(self, group, version, namespace, plural, body, **kw):  # noqa: ANN001, ANN202
        applications.append(json.loads(json.dumps(body)))
        return {"metadata": {"name": body["metadata"]["name"]}, "spec": {"driver": {}}}

    def execute_sync(self, context):  # noqa: ANN001, ANN202 - the pod spec is built; no cluster to run it
        if self.pod_request_obj is None:
            pods.append(self.build_pod_request_obj(context))

    monkeypatch.setattr(CustomObjectsApi, "create_namespaced_custom_object", create_object)
    monkeypatch.setattr(CustomObjectsApi, "get_namespaced_custom_object_status",
                        lambda self, **kw: {"status": {"applicationState": {"state": "RUNNING"}}})
    monkeypatch.setattr(KubernetesHook, "core_v1_client", property(lambda self: SimpleNamespace()))
    monkeypatch.setattr(KubernetesHook, "is_in_cluster", property(lambda self: False))
    monkeypatch.setattr(KubernetesPodOperator, "execute_sync", execute_sync)
    dag_run = _run("managed_kubernetes", "apache-airflow-providers-cncf-kubernetes")
    assert _state(dag_run) == "success", _task_states(dag_run)

    (app,) = applications  # the SparkApplication the operator sends to the Kubernetes API
    spec = app["spec"]
    assert spec["mainApplicationFile"] == "local:///opt/app.py"
    assert spec["sparkConf"]["spark.sql.shuffle.partitions"] == "8"
    assert spec["sparkConf"]["spark.extraListeners"] == LISTENERS
    assert "spark.jars" not in spec["sparkConf"]  # deps.jars carries it
    assert spec["deps"]["jars"] == ["local:///opt/dep.jar", remote_jar]
    _context(spec["sparkConf"], "spark_app", dag_run.run_id, "managed_kubernetes")
    driver_env = {e["name"]: e["value"] for e in spec["driver"]["env"]}
    assert driver_env["MY_VAR"] == "1"
    assert driver_env["AIRFLOW_CTX_TASK_ID"] == "spark_app"
    assert driver_env["RUNLINK_URL"] == airflow_tracker.url

    (pod,) = pods
    (container,) = pod.spec.containers
    env = {e.name: e.value for e in container.env}
    assert env["MY_VAR"] == "1"
    assert env["RUNLINK_URL"] == "http://user-choice:8686"  # the user's value is never replaced
    assert env["RUNLINK_TOKEN"] == airflow_tracker.token
    assert env["AIRFLOW_CTX_DAG_ID"] == "managed_kubernetes"
    assert env["AIRFLOW_CTX_TASK_ID"] == "pod"
    assert env["AIRFLOW_CTX_DAG_RUN_ID"] == dag_run.run_id
    assert env["AIRFLOW_CTX_TRY_NUMBER"] == "1"

    # the pod's container: its env, a Spark image with the listener installed (here: --conf + the local jar);
    # RUNLINK_URL points at this test's tracker as it would in a cluster where the user set it right
    pod_env = {**env, "RUNLINK_URL": airflow_tracker.url}
    jar = listener_jar_or_skip()
    _spark_submit(["--conf", f"spark.extraListeners={LISTENERS}", "--jars", jar, JOB, str(tmp_path / "pod")],
                  str(tmp_path), env=pod_env)
    attempt = _linked(airflow_tracker, "managed_kubernetes", dag_run.run_id, "pod")
    assert attempt["spark_apps"][0]["jobs"]


# ------------------------------------------------------------------ SparkSql (real local spark-sql) and SparkJDBC

def test_spark_sql_real_and_spark_jdbc_payload(airflow_tracker, monkeypatch) -> None:
    sql_hooks = pytest.importorskip("airflow.providers.apache.spark.hooks.spark_sql")
    from airflow.providers.apache.spark.hooks.spark_jdbc import SparkJDBCHook

    listener_jar_or_skip()
    commands: list[list[str]] = []
    jdbc: list[list[str]] = []
    original = sql_hooks.SparkSqlHook._prepare_command
    monkeypatch.setattr(sql_hooks.SparkSqlHook, "_prepare_command",
                        lambda self, cmd: commands.append(original(self, cmd)) or commands[-1])
    monkeypatch.setattr(SparkJDBCHook, "submit_jdbc_job",
                        lambda self: jdbc.append(self._build_spark_submit_command("spark_jdbc_script.py")))
    monkeypatch.setenv("AIRFLOW_CONN_JDBC_LOCAL", json.dumps({
        "conn_type": "jdbc", "host": "db.example", "port": 5432, "schema": "x", "login": "u", "password": "p",
        "extra": {"conn_prefix": "jdbc:postgresql://"}}))
    monkeypatch.setenv("RUNLINK_FLUSH_TIMEOUT", "30")
    dag_run = _run("managed_spark_sql", "apache-airflow-providers-apache-spark")
    assert _state(dag_run) == "success", _task_states(dag_run)

    (command,) = commands  # the real spark-sql command line the hook ran
    conf = _conf_words(command)
    assert command[0] == "spark-sql"
    assert conf["spark.sql.shuffle.partitions"] == "2"  # the user's "k=v,k=v" string, kept
    assert conf["spark.extraListeners"].split(",")[-1] == LISTENERS
    assert conf["spark.sql.queryExecutionListeners"].split(",")[-1] == QUERY_LISTENERS
    _context(conf, "spark_sql", dag_run.run_id, "managed_spark_sql")
    assert "spark.runlink.token" not in conf  # a local driver reads RUNLINK_TOKEN: no secret on the command line
    tree = wait_for_tree(airflow_tracker, "managed_spark_sql", dag_run.run_id, lambda t: any(
        a["spark_apps"] and a["spark_apps"][0].get("end_time") and a["spark_apps"][0]["jobs"]
        for a in attempts(t, "spark_sql")))
    (attempt,) = attempts(tree, "spark_sql")
    assert attempt["spark_apps"][0]["stages"]

    (jdbc_command,) = jdbc  # the spark-submit command SparkJDBCHook would run
    jdbc_conf = _conf_words(jdbc_command)
    assert jdbc_conf["spark.sql.shuffle.partitions"] == "2"
    assert jdbc_conf["spark.extraListeners"].split(",")[-1] == LISTENERS
    _context(jdbc_conf, "spark_jdbc", dag_run.run_id, "managed_spark_sql")
    jars = jdbc_command[jdbc_command.index("--jars") + 1].split(",")
    assert jars[0] == "/opt/jdbc/postgresql.jar" and jars[-1] == listener_jar_or_skip()


# ------------------------------------------------------------------ @task.pyspark (a task process of its own)

def test_task_pyspark_real_run_linked(airflow_tracker) -> None:
    pytest.importorskip("airflow.providers.apache.spark.decorators.pyspark")
    listener_jar_or_skip()
    import pyspark

    user_jar = next(str(p) for p in sorted((Path(pyspark.__file__).parent / "jars").glob("jsr305*.jar")))
    code = (
        "import importlib.util, json\n"
        f"spec = importlib.util.spec_from_file_location('d', {str(HERE / 'dags' / 'runlink_managed_dags.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "dr = m.managed_pyspark.test()\n"
        "print('RUNLINK_RUN=' + json.dumps([dr.run_id, str(getattr(dr.state, 'value', dr.state))]))\n"
    )
    env = {**os.environ, "RUNLINK_FLUSH_TIMEOUT": "30", "RUNLINK_TEST_USER_JAR": user_jar}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, env=env)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RUNLINK_RUN=")]
    assert lines, result.stdout[-3000:] + result.stderr[-6000:]
    run_id, state = json.loads(lines[0].split("=", 1)[1])
    assert state == "success", result.stderr[-6000:]
    tree = wait_for_tree(airflow_tracker, "managed_pyspark", run_id, lambda t: any(
        a["spark_apps"] and a["spark_apps"][0].get("end_time") and a["spark_apps"][0]["jobs"]
        for a in attempts(t, "count_rows")))
    (attempt,) = attempts(tree, "count_rows")
    app = attempt["spark_apps"][0]
    assert app["stages"]
    jars = (app.get("conf") or {}).get("spark.jars", "")
    if jars:  # the app's conf is reported: the user's jar stayed, ours was appended
        assert jars.split(",")[0] == user_jar and jars.split(",")[-1].endswith(".jar")


# ------------------------------------------------------------------ Databricks notebook / task / workflow

def test_databricks_task_operators_and_workflow_payloads(airflow_tracker, remote_jar, monkeypatch) -> None:
    hooks = pytest.importorskip("airflow.providers.databricks.hooks.databricks")
    submitted: list[dict] = []
    jobs: list[dict] = []
    run_now: list[dict] = []
    monkeypatch.setenv("AIRFLOW_CONN_DATABRICKS_DEFAULT", json.dumps(
        {"conn_type": "databricks", "host": "https://dbc.example", "password": "dapi-x"}))
    monkeypatch.setattr(hooks.DatabricksHook, "submit_run", lambda self, json: submitted.append(json) or 1)
    monkeypatch.setattr(hooks.DatabricksHook, "get_run_page_url", lambda self, run_id: f"https://dbc/run/{run_id}")
    monkeypatch.setattr(hooks.DatabricksHook, "list_jobs", lambda self, **kw: [])
    monkeypatch.setattr(hooks.DatabricksHook, "create_job", lambda self, json: jobs.append(json) or 77)
    monkeypatch.setattr(hooks.DatabricksHook, "run_now", lambda self, json: run_now.append(json) or 5)
    monkeypatch.setattr(hooks.DatabricksHook, "get_run_state",
                        lambda self, run_id: hooks.RunState("RUNNING", "", ""))
    dag_run = _run("managed_databricks", "apache-airflow-providers-databricks")
    assert _state(dag_run) == "success", _task_states(dag_run)
    run_id = dag_run.run_id

    by_kind = {("notebook_task" if "notebook_task" in p else "spark_submit_task"): p for p in submitted}
    notebook = by_kind["notebook_task"]
    params = notebook["notebook_task"]["base_parameters"]
    assert params["x"] == "1" and params["AIRFLOW_CTX_TASK_ID"] == "notebook"
    assert params["AIRFLOW_CTX_DAG_RUN_ID"] == run_id
    cluster = notebook["new_cluster"]
    assert cluster["spark_conf"]["spark.sql.shuffle.partitions"] == "8"
    assert cluster["spark_conf"]["spark.extraListeners"] == LISTENERS
    assert cluster["spark_conf"]["spark.jars"] == remote_jar
    _context(cluster["spark_conf"], "notebook", run_id, "managed_databricks")
    assert cluster["spark_env_vars"]["RUNLINK_URL"] == airflow_tracker.url

    submit_params = by_kind["spark_submit_task"]["spark_submit_task"]["parameters"]
    assert submit_params[-3:] == ["--class", "com.example.Main", "dbfs:/app.jar"]
    assert "spark.env.AIRFLOW_CTX_TASK_ID=task" in submit_params

    (job,) = jobs  # the workflow job the group's launch task creates
    (job_cluster,) = job["job_clusters"]
    spark_conf = job_cluster["new_cluster"]["spark_conf"]
    assert spark_conf["spark.extraListeners"] == f"{USER_LISTENER},{LISTENERS}"
    _context(spark_conf, "workflow.launch", run_id, "managed_databricks")
    tasks = {t["notebook_task"]["notebook_path"]: t["notebook_task"]["base_parameters"] for t in job["tasks"]}
    assert tasks["/nb/extract"]["x"] == "1" and tasks["/nb/extract"]["group"] == "g"
    assert tasks["/nb/extract"]["AIRFLOW_CTX_TASK_ID"] == "workflow.extract"
    assert tasks["/nb/load"]["AIRFLOW_CTX_TASK_ID"] == "workflow.load"
    for base in tasks.values():
        assert base["AIRFLOW_CTX_DAG_RUN_ID"] == run_id
        assert "AIRFLOW_CTX_TRY_NUMBER" not in base  # not known at launch: the task's latest attempt
    (now,) = run_now
    assert now["job_id"] == 77 and now["notebook_params"] == {"group": "g"}  # job-level params untouched
