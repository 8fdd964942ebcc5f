"""A real Spark Connect server for the tests (the server class in the jars pyspark ships, local[1]) started with
runlink's `spark-conf`, in a process group of its own so that stopping it stops its JVM."""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from runlink.tracker.process import free_port
from support.spark_runs import SPARK_SUBMIT, listener_jar_or_skip
from support.waiting import wait_for

SERVER_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def spark_connect_server(env: dict[str, str], log_path: Path, *spark_conf_args: str,
                         deadline_s: float = 180.0) -> Iterator[str]:
    """Start a server with the conf `runlink spark-conf *spark_conf_args` prints (SPARK_HOME: pyspark's), wait
    until it accepts connections, yield its sc:// URL; stop it on the way out. Skips when the listener jar is
    missing; its output goes to `log_path` (quoted when it does not start)."""
    listener_jar_or_skip()
    import pyspark

    if not list((Path(pyspark.__file__).parent / "jars").glob("spark-connect_*.jar")):
        pytest.skip(f"pyspark {pyspark.__version__} ships no Spark Connect server (4.x does)")
    env = {**env, "SPARK_HOME": str(Path(pyspark.__file__).parent)}
    conf = subprocess.run([sys.executable, "-m", "runlink", "spark-conf", *spark_conf_args], capture_output=True,
                          text=True, env=env, timeout=60, check=True).stdout
    port = free_port()
    cmd = [str(SPARK_SUBMIT), "--class", SERVER_CLASS,
           "--master", "local[1]", "--conf", f"spark.connect.grpc.binding.port={port}",
           "--conf", "spark.ui.enabled=false", "--conf", "spark.sql.shuffle.partitions=2",
           *shlex.split(conf), "spark-internal"]
    with open(log_path, "wb") as log:
        server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: server.poll() is not None or _accepts(port), "the Spark Connect server accepts connections",
                 deadline_s, interval_s=0.5, context=lambda: log_path.read_text()[-3000:])
        assert server.poll() is None, f"the Spark Connect server exited:\n{log_path.read_text()[-3000:]}"
        yield f"sc://127.0.0.1:{port}"
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(timeout=30)
