"""The managed-operator injectors on real provider operator objects, without a DAG run: after the undo every
attribute is as the user wrote it (equal and the very same objects), and input runlink cannot read (a string that
is not the form it expects, a spec that does not parse) is left alone instead of breaking the operator."""

from __future__ import annotations

import copy
from types import SimpleNamespace
from typing import Any

import pytest

from runlink.airflow.injection import apply, injector_for

RAW = {"dag_id": "d", "dag_run_id": "r1", "task_id": "t", "try_number": "1", "uid": "u1",
       "execution_date": "2024-01-01T00:00:00+00:00"}
SETTINGS = SimpleNamespace(remote_jar="s3://bucket/runlink.jar", inject=True)


def _operators() -> list[tuple[Any, tuple[str, ...]]]:
    made: list[tuple[Any, tuple[str, ...]]] = []
    try:
        from airflow.providers.google.cloud.operators.dataproc import (
            DataprocCreateBatchOperator,
            DataprocInstantiateInlineWorkflowTemplateOperator,
        )

        made.append((DataprocCreateBatchOperator(task_id="b", region="r", project_id="p", batch={
            "spark_batch": {"main_class": "M"}, "runtime_config": {"properties": {"a": "1"}}}), ("batch",)))
        template = {"jobs": [{"step_id": "s", "spark_job": {"main_class": "M"}}]}
        made.append((DataprocInstantiateInlineWorkflowTemplateOperator(task_id="w", region="r", project_id="p",
                                                                       template=template), ("template",)))
    except ImportError:
        pass
    try:
        from airflow.providers.amazon.aws.operators.emr import EmrContainerOperator, EmrServerlessStartJobOperator
        from airflow.providers.amazon.aws.operators.glue import GlueJobOperator

        made.append((EmrServerlessStartJobOperator(task_id="s", application_id="a", execution_role_arn="x",
                                                   job_driver={"sparkSubmit": {"entryPoint": "e"}},
                                                   configuration_overrides=None),
                     ("job_driver", "configuration_overrides")))
        made.append((EmrContainerOperator(task_id="k", name="n", virtual_cluster_id="v", execution_role_arn="x",
                                          release_label="l", job_driver={"sparkSubmitJobDriver": {"entryPoint": "e"}}),
                     ("job_driver", "configuration_overrides")))
        made.append((GlueJobOperator(task_id="g", job_name="j", script_args={"--x": "1"}), ("script_args",)))
    except ImportError:
        pass
    try:
        from airflow.providers.apache.livy.operators.livy import LivyOperator

        made.append((LivyOperator(task_id="l", file="f.py", conf={"a": "1"}), ("spark_params",)))
    except ImportError:
        pass
    try:
        from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
        from airflow.providers.cncf.kubernetes.operators.spark_kubernetes import SparkKubernetesOperator

        made.append((KubernetesPodOperator(task_id="p", image="i", env_vars={"A": "1"}), ("env_vars",)))
        made.append((SparkKubernetesOperator(task_id="sk", template_spec={"spark": {"spec": {"sparkConf": {}}}}),
                     ("template_spec", "application_file")))
    except ImportError:
        pass
    from airflow.providers.apache.spark.operators.spark_jdbc import SparkJDBCOperator
    from airflow.providers.apache.spark.operators.spark_sql import SparkSqlOperator

    made.append((SparkSqlOperator(task_id="q", sql="SELECT 1", conf="a=1,b=2"), ("_conf",)))
    made.append((SparkJDBCOperator(task_id="j", spark_conf={"a": "1"}, spark_jars="x.jar"),
                 ("_spark_conf", "_spark_jars")))
    return made


@pytest.mark.parametrize("index", range(10))
def test_undo_restores_every_attribute(index: int) -> None:
    operators = _operators()
    if index >= len(operators):
        pytest.skip("fewer operators: a provider is not installed")
    task, names = operators[index]
    before = {name: getattr(task, name) for name in names}
    copies = copy.deepcopy(before)
    assert injector_for(task) is not None, type(task).__name__
    undo = apply(task, RAW, SETTINGS)
    changed = [name for name in names if getattr(task, name) != copies[name]]
    assert changed, f"{type(task).__name__}: nothing injected"
    undo()
    for name in names:
        assert getattr(task, name) is before[name], name  # the user's own object is back
        assert getattr(task, name) == copies[name], name  # and it was never mutated


def test_unreadable_input_left_alone() -> None:
    from airflow.providers.apache.spark.operators.spark_sql import SparkSqlOperator

    task = SparkSqlOperator(task_id="q", sql="SELECT 1", conf="{{ not rendered }}")
    undo = apply(task, RAW, SETTINGS)
    assert task._conf == "{{ not rendered }}"
    undo()
    livy = pytest.importorskip("airflow.providers.apache.livy.operators.livy")
    task = livy.LivyOperator(task_id="l", file="f.py")
    task.spark_params = "{{ params.spark }}"  # a template that rendered to nothing runlink can read
    apply(task, RAW, SETTINGS)()
    assert task.spark_params == "{{ params.spark }}"
    k8s = pytest.importorskip("airflow.providers.cncf.kubernetes.operators.spark_kubernetes")
    task = k8s.SparkKubernetesOperator(task_id="sk", application_file="::: not yaml :::")
    apply(task, RAW, SETTINGS)()
    assert task.application_file == "::: not yaml :::" and task.template_spec is None


def test_pod_env_keeps_secrets_and_bulk_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """A RUNLINK_TOKEN from a Kubernetes Secret, or tracker settings maybe in an `env_from` source, are never
    shadowed by an explicit `env` entry (which would win over both)."""
    pod = pytest.importorskip("airflow.providers.cncf.kubernetes.operators.pod")
    from airflow.providers.cncf.kubernetes.secret import Secret
    from kubernetes.client import models as k8s

    monkeypatch.setenv("RUNLINK_TOKEN", "test-token-value")
    monkeypatch.setenv("RUNLINK_URL", "http://tracker.example:8686")
    plain = pod.KubernetesPodOperator(task_id="p", image="i")
    apply(plain, RAW, SETTINGS)
    assert {"RUNLINK_TOKEN", "RUNLINK_URL"} <= {e.name for e in plain.env_vars}  # the control case

    task = pod.KubernetesPodOperator(task_id="p", image="i", secrets=[Secret("env", "RUNLINK_TOKEN", "rl", "token")])
    apply(task, RAW, SETTINGS)
    names = {e["name"] if isinstance(e, dict) else e.name for e in
             (task.env_vars if isinstance(task.env_vars, list) else [{"name": k} for k in task.env_vars])}
    assert "RUNLINK_TOKEN" not in names and "RUNLINK_URL" in names and "AIRFLOW_CTX_TASK_ID" in names

    source = k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="runlink"))
    task = pod.KubernetesPodOperator(task_id="p", image="i", env_from=[source])
    apply(task, RAW, SETTINGS)
    names = {e.name for e in task.env_vars}
    assert not names & {"RUNLINK_URL", "RUNLINK_TOKEN"} and "AIRFLOW_CTX_DAG_RUN_ID" in names
