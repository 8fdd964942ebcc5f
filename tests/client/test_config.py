"""Configuration precedence as DESIGN.md fixes it, the DBND__ aliases, the token file, and token secrecy."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from servers import RecordingServer

from runlink import config, delivery
from runlink.config import DEFAULT_URL, load
from support.waiting import wait_for


def test_defaults(clean_env: Path) -> None:
    cfg = load(environ={"RUNLINK_HOME": str(clean_env)})
    assert cfg.url == DEFAULT_URL and cfg.token is None and cfg.tracking is True
    assert cfg.home == clean_env and cfg.spool_dir == clean_env / "spool"
    assert cfg.flush_timeout_s == 5.0


def test_default_home_is_dot_runlink() -> None:
    assert config.default_home({}) == Path("~/.runlink").expanduser()


def test_aliases_are_read_when_the_primary_is_unset(clean_env: Path) -> None:
    env = {"RUNLINK_HOME": str(clean_env), "DBND__CORE__DATABAND_URL": "http://alias:1",
           "DBND__CORE__DATABAND_ACCESS_TOKEN": "alias-token", "DBND__TRACKING": "False"}
    cfg = load(environ=env)
    assert (cfg.url, cfg.token, cfg.tracking) == ("http://alias:1", "alias-token", False)


def test_primary_beats_alias(clean_env: Path) -> None:
    env = {"RUNLINK_HOME": str(clean_env), "RUNLINK_URL": "http://primary:1", "DBND__CORE__DATABAND_URL":
           "http://alias:1", "RUNLINK_TOKEN": "primary-token", "DBND__CORE__DATABAND_ACCESS_TOKEN": "alias-token",
           "RUNLINK_TRACKING": "true", "DBND__TRACKING": "false"}
    cfg = load(environ=env)
    assert (cfg.url, cfg.token, cfg.tracking) == ("http://primary:1", "primary-token", True)


def test_token_file_is_read_only_when_no_token_is_set(clean_env: Path) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "token").write_text("file-token\n")
    assert load(environ={"RUNLINK_HOME": str(clean_env)}).token == "file-token"
    assert load(environ={"RUNLINK_HOME": str(clean_env), "DBND__CORE__DATABAND_ACCESS_TOKEN": "a"}).token == "a"
    assert load(environ={"RUNLINK_HOME": str(clean_env), "RUNLINK_TOKEN": "env"}).token == "env"


def test_precedence_explicit_then_spark_conf_then_env(clean_env: Path) -> None:
    env = {"RUNLINK_HOME": str(clean_env), "RUNLINK_URL": "http://env:1", "RUNLINK_TOKEN": "env-token",
           "RUNLINK_TRACKING": "true"}
    spark = {"spark.runlink.url": "http://spark:1", "spark.runlink.token": "spark-token",
             "spark.runlink.tracking": "false"}
    from_spark = load(environ=env, spark_conf=spark)
    assert (from_spark.url, from_spark.token, from_spark.tracking) == ("http://spark:1", "spark-token", False)
    explicit = load(environ=env, spark_conf=spark, url="http://explicit:1", token="explicit-token", tracking=True)
    assert (explicit.url, explicit.token, explicit.tracking) == ("http://explicit:1", "explicit-token", True)


def test_flush_timeout_from_env(clean_env: Path) -> None:
    cfg = load(environ={"RUNLINK_HOME": str(clean_env), "RUNLINK_FLUSH_TIMEOUT": "1.5"})
    assert cfg.flush_timeout_s == 1.5
    assert load(environ={"RUNLINK_FLUSH_TIMEOUT": "1.5"}, flush_timeout_s=3.0).flush_timeout_s == 3.0


def test_bad_boolean_says_what_to_use() -> None:
    with pytest.raises(ValueError, match="true or false"):
        load(environ={"RUNLINK_TRACKING": "perhaps"})


def test_token_never_appears_in_repr(clean_env: Path) -> None:
    cfg = load(environ={"RUNLINK_HOME": str(clean_env), "RUNLINK_TOKEN": "very-secret-token"})
    assert "very-secret-token" not in repr(cfg) and "very-secret-token" not in str(cfg)
    client = delivery.Client(cfg.with_(url="http://127.0.0.1:9"))
    assert "very-secret-token" not in repr(client)


def test_token_from_file_is_sent_but_never_logged(clean_env: Path, server: RecordingServer,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    clean_env.mkdir(parents=True)
    (clean_env / "token").write_text("file-secret-xyz")
    monkeypatch.setenv("RUNLINK_URL", server.url)
    server.statuses.extend([401])
    with caplog.at_level(logging.DEBUG):
        client = delivery.get_client()
        import runlink

        runlink.log_metric("k", 1)
        wait_for(lambda: server.requests, deadline_s=10)
        client.flush(5)
    assert server.requests[0]["headers"]["Authorization"] == "Bearer file-secret-xyz"
    assert "file-secret-xyz" not in caplog.text and "HTTP 401" in caplog.text


def test_token_never_appears_in_a_child_process_output(child_env: dict, clean_env: Path) -> None:
    """A child that logs against a refusing and then a rejecting endpoint prints warnings, never the token."""
    server = RecordingServer(statuses=[403] * 10)
    try:
        env = dict(child_env, RUNLINK_URL=server.url, RUNLINK_TOKEN="child-secret-777")
        code = ("import logging, runlink; logging.basicConfig(level=logging.DEBUG); "
                "runlink.log_metric('k', 1); from runlink import delivery; print(delivery.get_client())")
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "HTTP 403" in out.stderr
        assert "child-secret-777" not in out.stdout + out.stderr
        assert server.requests[0]["headers"]["Authorization"] == "Bearer child-secret-777"
    finally:
        server.stop()


def test_environment_is_not_modified(clean_env: Path) -> None:
    before = dict(os.environ)
    load()
    assert dict(os.environ) == before
