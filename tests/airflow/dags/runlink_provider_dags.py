"""DAGs with the cloud operators (EMR, Databricks, Dataproc); the tests intercept their hooks."""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

START = datetime(2024, 1, 1)

try:
    from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator
except ImportError:
    EmrAddStepsOperator = None
try:
    from airflow.providers.databricks.operators.databricks import (
        DatabricksRunNowOperator,
        DatabricksSubmitRunOperator,
    )
except ImportError:
    DatabricksSubmitRunOperator = DatabricksRunNowOperator = None
try:
    from airflow.providers.google.cloud.operators.dataproc import DataprocSubmitJobOperator
except ImportError:
    DataprocSubmitJobOperator = None

if EmrAddStepsOperator is not None:
    with DAG("rl_emr", schedule=None, start_date=START, catchup=False) as rl_emr:
        EmrAddStepsOperator(
            task_id="add_steps",
            job_flow_id="j-RUNLINKTEST",
            aws_conn_id=None,
            steps=[
                {
                    "Name": "spark",
                    "ActionOnFailure": "CONTINUE",
                    "HadoopJarStep": {
                        "Jar": "command-runner.jar",
                        "Args": ["spark-submit", "--deploy-mode", "cluster", "--conf",
                                 "spark.extraListeners=com.example.UserListener", "s3://bucket/app.py", "OUT"],
                    },
                },
                {"Name": "not spark", "ActionOnFailure": "CONTINUE",
                 "HadoopJarStep": {"Jar": "s3://bucket/tool.jar", "Args": ["--x", "1"]}},
            ],
        )

if DatabricksSubmitRunOperator is not None:
    with DAG("rl_databricks", schedule=None, start_date=START, catchup=False) as rl_databricks:
        DatabricksSubmitRunOperator(
            task_id="submit_run",
            wait_for_termination=False,
            new_cluster={"spark_version": "15.4.x-scala2.12", "num_workers": 1, "node_type_id": "i3.xlarge",
                         "spark_conf": {"spark.sql.shuffle.partitions": "8"},
                         "spark_env_vars": {"MY_VAR": "1"}},
            spark_python_task={"python_file": "dbfs:/jobs/app.py", "parameters": ["OUT"]},
        )
        DatabricksSubmitRunOperator(
            task_id="existing_cluster",
            wait_for_termination=False,
            existing_cluster_id="0101-abc",
            notebook_task={"notebook_path": "/Users/me/nb", "base_parameters": {"x": "1"}},
        )
        DatabricksRunNowOperator(
            task_id="run_now",
            wait_for_termination=False,
            job_id=42,
            spark_submit_params=["--class", "com.example.Main", "dbfs:/jobs/app.jar"],
        )

if DataprocSubmitJobOperator is not None:
    with DAG("rl_dataproc", schedule=None, start_date=START, catchup=False) as rl_dataproc:
        for kind, spec in (
            ("pyspark_job", {"main_python_file_uri": "gs://bucket/app.py", "args": ["OUT"],
                             "properties": {"spark.sql.shuffle.partitions": "8"}}),
            ("spark_job", {"main_class": "com.example.Main", "jar_file_uris": ["gs://bucket/app.jar"]}),
            ("spark_sql_job", {"query_file_uri": "gs://bucket/q.sql"}),
        ):
            DataprocSubmitJobOperator(
                task_id=kind,
                project_id="proj",
                region="europe-west1",
                job={"reference": {"project_id": "proj"}, "placement": {"cluster_name": "c1"}, kind: spec},
            )
