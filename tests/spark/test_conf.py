"""runlink.spark.conf() and `runlink spark-conf`: appended, never overwritten, token only when asked."""

from __future__ import annotations

import importlib
import json
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from runlink.spark.conf import QUERY_LISTENER, SPARK_LISTENER, ListenerJarMissing, conf, listener_jar

conf_mod = importlib.import_module("runlink.spark.conf")  # `runlink.spark.conf` is the function

CTX = {
    "AIRFLOW_CTX_DAG_ID": "etl",
    "AIRFLOW_CTX_EXECUTION_DATE": "2026-11-22T10:00:00+00:00",
    "AIRFLOW_CTX_TASK_ID": "spark_step",
    "AIRFLOW_CTX_TRY_NUMBER": "2",
}


@pytest.fixture
def fake_jar(tmp_path, monkeypatch):
    jar = tmp_path / "runlink-spark-listener.jar"
    jar.write_bytes(b"PK")
    monkeypatch.setenv("RUNLINK_LISTENER_JAR", str(jar))
    for name in CTX:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("RUNLINK_URL", raising=False)
    monkeypatch.delenv("RUNLINK_TOKEN", raising=False)
    monkeypatch.setenv("RUNLINK_HOME", str(tmp_path / "home"))
    return str(jar)


def test_listener_jar_missing_says_how_to_build(monkeypatch, tmp_path):
    monkeypatch.delenv("RUNLINK_LISTENER_JAR", raising=False)
    monkeypatch.setattr(conf_mod, "jars_dir", lambda: tmp_path)
    with pytest.raises(ListenerJarMissing, match="scripts/build-jar.sh"):
        listener_jar()


def test_conf_fresh(fake_jar, monkeypatch):
    for name, value in CTX.items():
        monkeypatch.setenv(name, value)
    out = conf()
    assert out["spark.jars"] == fake_jar
    assert out["spark.extraListeners"] == SPARK_LISTENER
    assert out["spark.sql.queryExecutionListeners"] == QUERY_LISTENER
    assert out["spark.env.AIRFLOW_CTX_DAG_ID"] == "etl"
    assert out["spark.env.AIRFLOW_CTX_TRY_NUMBER"] == "2"
    assert out["spark.runlink.url"] == "http://127.0.0.1:8686"
    assert out["spark.runlink.tracking"] == "true"
    assert "spark.runlink.token" not in out


def test_conf_appends_and_never_overwrites(fake_jar):
    existing = {
        "spark.jars": "/opt/a.jar,/opt/b.jar",
        "spark.extraListeners": "com.acme.Listener",
        "spark.sql.queryExecutionListeners": f"com.acme.Q,{QUERY_LISTENER}",
        "spark.env.AIRFLOW_CTX_DAG_ID": "user_dag",
        "spark.runlink.url": "http://tracker:1",
    }
    out = conf(context={"dag_id": "etl", "task_id": "t"}, existing=existing, url="http://other:2")
    assert out["spark.jars"] == f"/opt/a.jar,/opt/b.jar,{fake_jar}"
    assert out["spark.extraListeners"] == f"com.acme.Listener,{SPARK_LISTENER}"
    assert out["spark.sql.queryExecutionListeners"] == f"com.acme.Q,{QUERY_LISTENER}"  # not duplicated
    assert out["spark.env.AIRFLOW_CTX_DAG_ID"] == "user_dag"  # the user's value wins
    assert out["spark.env.AIRFLOW_CTX_TASK_ID"] == "t"
    assert out["spark.runlink.url"] == "http://tracker:1"
    # applying twice changes nothing (idempotent)
    assert conf(context={"dag_id": "etl", "task_id": "t"}, existing={**existing, **out}) == out


def test_conf_remote_jar_uri_counts_as_same_jar(fake_jar):
    out = conf(existing={"spark.jars": "s3://bucket/jars/runlink-spark-listener.jar"}, jar_uri="s3://x/runlink-spark-listener.jar")
    assert out["spark.jars"] == "s3://bucket/jars/runlink-spark-listener.jar"
    assert conf(jar_uri="gs://b/runlink-spark-listener.jar")["spark.jars"] == "gs://b/runlink-spark-listener.jar"


def test_conf_token_only_when_explicit(fake_jar, monkeypatch):
    monkeypatch.setenv("RUNLINK_TOKEN", "s3cret")
    assert "spark.runlink.token" not in conf()
    assert conf(token="s3cret")["spark.runlink.token"] == "s3cret"


def _cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "runlink", "spark-conf", *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_cli_args_json_properties(fake_jar, monkeypatch, tmp_path):
    import os

    env = {**os.environ, **CTX, "AIRFLOW_CTX_DAG_ID": "it's etl", "RUNLINK_TOKEN": "s3cret"}
    res = _cli("--conf", "spark.extraListeners=com.acme.L", env=env)
    assert res.returncode == 0, res.stderr
    assert "s3cret" not in res.stdout
    words = shlex.split(res.stdout)
    pairs = dict(w.split("=", 1) for w in words[1::2])
    assert set(words[0::2]) == {"--conf"}
    assert pairs["spark.env.AIRFLOW_CTX_DAG_ID"] == "it's etl"
    assert pairs["spark.extraListeners"] == f"com.acme.L,{SPARK_LISTENER}"

    as_json = json.loads(_cli("--format", "json", env=env).stdout)
    assert as_json["spark.jars"] == fake_jar and "spark.runlink.token" not in as_json
    with_token = json.loads(_cli("--format", "json", "--with-token", env=env).stdout)
    assert with_token["spark.runlink.token"] == "s3cret"

    props = _cli("--format", "properties", env=env).stdout.splitlines()
    assert f"spark.extraListeners {SPARK_LISTENER}" in props


def test_cli_missing_jar(monkeypatch, tmp_path):
    import os

    env = {**os.environ, "RUNLINK_LISTENER_JAR": str(Path(tmp_path) / "nope.jar")}
    res = _cli(env=env)
    assert res.returncode == 1 and "does not exist" in res.stderr
