"""DAGs with the managed-Spark operators (Dataproc batches and templates, EMR Serverless and on EKS, Glue, Livy,
Spark on Kubernetes, KubernetesPodOperator, SparkSql/SparkJDBC, Databricks notebook/task/workflow, @task.pyspark).
The tests intercept each one at its hook boundary (tests/airflow/test_managed_operators.py); a DAG whose provider
is not installed is absent and its test skips, naming the provider."""

from __future__ import annotations

import os
from datetime import datetime

try:
    from airflow.sdk import DAG, task
except ImportError:  # Airflow 2.11
    from airflow.decorators import task

    from airflow import DAG

START = datetime(2024, 1, 1)
OUT = os.environ.get("RUNLINK_TEST_OUT", "/tmp/runlink-test-out")


def _optional(module: str, *names: str) -> list:
    try:
        imported = __import__(module, fromlist=list(names))
        return [getattr(imported, name) for name in names]
    except ImportError:
        return [None] * len(names)


DataprocCreateBatchOperator, DataprocInstantiateInlineWorkflowTemplateOperator = _optional(
    "airflow.providers.google.cloud.operators.dataproc",
    "DataprocCreateBatchOperator", "DataprocInstantiateInlineWorkflowTemplateOperator")
EmrServerlessStartJobOperator, EmrContainerOperator = _optional(
    "airflow.providers.amazon.aws.operators.emr", "EmrServerlessStartJobOperator", "EmrContainerOperator")
(GlueJobOperator,) = _optional("airflow.providers.amazon.aws.operators.glue", "GlueJobOperator")
(LivyOperator,) = _optional("airflow.providers.apache.livy.operators.livy", "LivyOperator")
(SparkKubernetesOperator,) = _optional("airflow.providers.cncf.kubernetes.operators.spark_kubernetes",
                                       "SparkKubernetesOperator")
(KubernetesPodOperator,) = _optional("airflow.providers.cncf.kubernetes.operators.pod", "KubernetesPodOperator")
(SparkSqlOperator,) = _optional("airflow.providers.apache.spark.operators.spark_sql", "SparkSqlOperator")
(SparkJDBCOperator,) = _optional("airflow.providers.apache.spark.operators.spark_jdbc", "SparkJDBCOperator")
DatabricksNotebookOperator, DatabricksTaskOperator = _optional(
    "airflow.providers.databricks.operators.databricks", "DatabricksNotebookOperator", "DatabricksTaskOperator")
(DatabricksWorkflowTaskGroup,) = _optional("airflow.providers.databricks.operators.databricks_workflow",
                                           "DatabricksWorkflowTaskGroup")

USER_LISTENER = "com.example.UserListener"

if DataprocCreateBatchOperator is not None:
    from google.cloud.dataproc_v1 import Batch

    with DAG("managed_dataproc", schedule=None, start_date=START, catchup=False) as managed_dataproc:
        DataprocCreateBatchOperator(
            task_id="batch", project_id="proj", region="europe-west1", batch_id="b1", asynchronous=True,
            batch={"pyspark_batch": {"main_python_file_uri": "gs://bucket/app.py", "args": ["OUT"]},
                   "runtime_config": {"properties": {"spark.sql.shuffle.partitions": "8",
                                                     "spark.extraListeners": USER_LISTENER}}},
        )
        DataprocCreateBatchOperator(
            task_id="batch_proto", project_id="proj", region="europe-west1", batch_id="b2", asynchronous=True,
            batch=Batch(spark_batch={"main_class": "com.example.Main", "jar_file_uris": ["gs://bucket/app.jar"]},
                        runtime_config={"properties": {"spark.executor.cores": "2"}}),
        )
        DataprocInstantiateInlineWorkflowTemplateOperator(
            task_id="template", project_id="proj", region="europe-west1",
            template={
                "id": "wf", "placement": {"managed_cluster": {"cluster_name": "c1", "config": {}}},
                "jobs": [
                    {"step_id": "py", "pyspark_job": {"main_python_file_uri": "gs://bucket/app.py",
                                                      "properties": {"spark.sql.shuffle.partitions": "8"}}},
                    {"step_id": "jar", "spark_job": {"main_class": "com.example.Main",
                                                     "jar_file_uris": ["gs://bucket/app.jar"]}},
                    {"step_id": "hive", "hive_job": {"query_file_uri": "gs://bucket/q.hql"}},
                ],
            },
        )

if EmrServerlessStartJobOperator is not None:
    with DAG("managed_emr", schedule=None, start_date=START, catchup=False) as managed_emr:
        EmrServerlessStartJobOperator(
            task_id="serverless", application_id="app-1", execution_role_arn="arn:aws:iam::1:role/r",
            aws_conn_id=None, region_name="us-east-1", wait_for_completion=False, name="job",
            job_driver={"sparkSubmit": {
                "entryPoint": "s3://bucket/app.py", "entryPointArguments": ["OUT"],
                "sparkSubmitParameters": f"--conf spark.executor.cores=2 --conf spark.extraListeners={USER_LISTENER}"
                                         " --jars s3://bucket/dep.jar"}},
            configuration_overrides={"applicationConfiguration": [
                {"classification": "spark-defaults", "properties": {"spark.sql.shuffle.partitions": "8"}}]},
        )
        EmrServerlessStartJobOperator(
            task_id="serverless_plain", application_id="app-1", execution_role_arn="arn:aws:iam::1:role/r",
            aws_conn_id=None, region_name="us-east-1", wait_for_completion=False, name="job2",
            job_driver={"sparkSubmit": {"entryPoint": "s3://bucket/app.py"}},
        )
        EmrContainerOperator(
            task_id="eks", name="job", virtual_cluster_id="vc-1", execution_role_arn="arn:aws:iam::1:role/r",
            release_label="emr-7.5.0-latest", aws_conn_id=None, region_name="us-east-1", wait_for_completion=False,
            job_driver={"sparkSubmitJobDriver": {"entryPoint": "s3://bucket/app.py", "entryPointArguments": ["OUT"],
                                                 "sparkSubmitParameters": "--conf spark.executor.instances=2"}},
            configuration_overrides={"monitoringConfiguration": {"persistentAppUI": "ENABLED"}},
        )
        GlueJobOperator(
            task_id="glue", job_name="etl", aws_conn_id=None, region_name="us-east-1", wait_for_completion=False,
            script_args={"--day": "2024-01-01", "--conf": "spark.sql.shuffle.partitions=8"},
            create_job_kwargs={"DefaultArguments": {"--extra-jars": "s3://bucket/dep.jar"}},
        )

if LivyOperator is not None:
    with DAG("managed_livy", schedule=None, start_date=START, catchup=False) as managed_livy:
        LivyOperator(
            task_id="livy", livy_conn_id="livy_local", polling_interval=0,
            file=os.environ.get("RUNLINK_TEST_SPARK_JOB", "app.py"), args=[OUT + "/livy"],
            conf={"spark.sql.shuffle.partitions": "4"},
        )

if SparkKubernetesOperator is not None:
    with DAG("managed_kubernetes", schedule=None, start_date=START, catchup=False) as managed_kubernetes:
        SparkKubernetesOperator(
            task_id="spark_app", namespace="spark", reattach_on_restart=False, get_logs=False,
            application_file="""
apiVersion: sparkoperator.k8s.io/v1beta2
kind: SparkApplication
metadata:
  name: etl
spec:
  type: Python
  mode: cluster
  image: spark:4.0.0
  mainApplicationFile: local:///opt/app.py
  sparkVersion: 4.0.0
  sparkConf:
    spark.sql.shuffle.partitions: "8"
  deps:
    jars: [local:///opt/dep.jar]
  driver:
    cores: 1
    env:
      - name: MY_VAR
        value: "1"
  executor:
    cores: 1
    instances: 1
""",
        )
        KubernetesPodOperator(
            task_id="pod", namespace="default", image="spark:4.0.0", name="etl-pod", do_xcom_push=False,
            cmds=["spark-submit"], arguments=["local:///opt/app.py"],
            env_vars={"MY_VAR": "1", "RUNLINK_URL": "http://user-choice:8686"},
        )

if SparkSqlOperator is not None:
    with DAG("managed_spark_sql", schedule=None, start_date=START, catchup=False) as managed_spark_sql:
        SparkSqlOperator(
            task_id="spark_sql", master="local[1]", name="rl-spark-sql",
            sql="SELECT id % 3 AS k, count(*) AS n FROM range(1000) GROUP BY id % 3",
            conf="spark.sql.shuffle.partitions=2,spark.runlink.flushTimeoutMs=60000,"
                 "spark.runlink.readTimeoutMs=30000",
        )
        SparkJDBCOperator(
            task_id="spark_jdbc", spark_conn_id="spark_local", jdbc_conn_id="jdbc_local", cmd_type="jdbc_to_spark",
            jdbc_table="t", metastore_table="m", spark_conf={"spark.sql.shuffle.partitions": "2"},
            spark_jars="/opt/jdbc/postgresql.jar",
        )

if DatabricksNotebookOperator is not None:
    with DAG("managed_databricks", schedule=None, start_date=START, catchup=False) as managed_databricks:
        DatabricksNotebookOperator(
            task_id="notebook", notebook_path="/Users/me/nb", source="WORKSPACE", wait_for_termination=False,
            notebook_params={"x": "1"},
            new_cluster={"spark_version": "15.4.x-scala2.12", "num_workers": 1, "node_type_id": "i3.xlarge",
                         "spark_conf": {"spark.sql.shuffle.partitions": "8"}},
        )
        DatabricksTaskOperator(
            task_id="task", existing_cluster_id="0101-abc", wait_for_termination=False,
            task_config={"spark_submit_task": {"parameters": ["--class", "com.example.Main", "dbfs:/app.jar"]}},
        )
        with DatabricksWorkflowTaskGroup(
            group_id="workflow", databricks_conn_id="databricks_default",
            job_clusters=[{"job_cluster_key": "jc", "new_cluster": {
                "spark_version": "15.4.x-scala2.12", "num_workers": 1, "node_type_id": "i3.xlarge",
                "spark_conf": {"spark.extraListeners": USER_LISTENER}}}],
            notebook_params={"group": "g"},
        ):
            first = DatabricksNotebookOperator(task_id="extract", notebook_path="/nb/extract", source="WORKSPACE",
                                               job_cluster_key="jc", notebook_params={"x": "1"},
                                               wait_for_termination=False)
            second = DatabricksNotebookOperator(task_id="load", notebook_path="/nb/load", source="WORKSPACE",
                                                job_cluster_key="jc", wait_for_termination=False)
            first >> second


with DAG("managed_pyspark", schedule=None, start_date=START, catchup=False) as managed_pyspark:
    pyspark_task = getattr(task, "pyspark", None)
    if pyspark_task is not None:
        # a user `spark.jars` (a jar of the user's own): it reaches the JVM as --conf, over spark-defaults.conf
        user_conf = {"spark.master": "local[1]", "spark.sql.shuffle.partitions": "2",
                     "spark.runlink.flushTimeoutMs": "60000", "spark.runlink.readTimeoutMs": "30000"}
        if os.environ.get("RUNLINK_TEST_USER_JAR"):
            user_conf["spark.jars"] = os.environ["RUNLINK_TEST_USER_JAR"]

        @pyspark_task(config_kwargs=user_conf)
        def count_rows(spark=None, sc=None) -> int:
            df = spark.range(1000)
            return df.groupBy((df.id % 3).alias("k")).count().count()

        count_rows()
