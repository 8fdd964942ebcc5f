"""The task process environment while execute() runs: what every child process inherits.

- `AIRFLOW_CTX_*` (EXECUTION_DATE, LOGICAL_DATE, MAP_INDEX and UID included) and `RUNLINK_URL` / `RUNLINK_TOKEN`,
  each only when not already set.
- Spark with no code change (`spark-submit app.py` in a BashOperator, `python job.py`, a SparkSession created in a
  `@task`): every one of them starts the driver through Spark's launcher, which reads `spark-defaults.conf` from
  `$SPARK_CONF_DIR`. runlink points `SPARK_CONF_DIR` at a private copy of the conf dir in effect (the user's files
  linked, their `spark-defaults.conf` kept verbatim) with the listener conf appended: user keys win, listener
  lists are appended to. The jar is also put on `SPARK_DIST_CLASSPATH`, which the launcher adds to the driver
  classpath, so a user `--jars` (which replaces `spark.jars`) cannot leave the listener class missing.
  Everything is undone after execute().
"""

from __future__ import annotations

import importlib.util
import os
import re
import tempfile
from pathlib import Path

from runlink.airflow.injection.base import Undo
from runlink.airflow.sparkconf import build_spark_conf, local_jar
from runlink.context import to_env
from runlink.spark.conf import LIST_KEYS

_PROPERTY = re.compile(r"^\s*([^#!\s=:][^\s=:]*)\s*[=:\s]\s*(.*)$")


def _context_env(raw: dict[str, str]) -> dict[str, str]:
    from runlink.airflow.task_context import tracker_env

    env = to_env(raw)
    if "execution_date" in raw:
        env.setdefault("AIRFLOW_CTX_LOGICAL_DATE", raw["execution_date"])
    env.update(tracker_env())
    return env


def original_conf_dir() -> Path | None:
    """The conf dir spark-submit would use: $SPARK_CONF_DIR, else $SPARK_HOME/conf, else pyspark's."""
    if os.environ.get("SPARK_CONF_DIR"):
        return Path(os.environ["SPARK_CONF_DIR"])
    home = os.environ.get("SPARK_HOME")
    if not home:
        spec = importlib.util.find_spec("pyspark")
        if spec is None or not spec.submodule_search_locations:
            return None
        home = list(spec.submodule_search_locations)[0]
    return Path(home) / "conf"


def read_properties(path: Path) -> dict[str, str]:
    """The key/values of a spark-defaults.conf (Java properties; continuation lines are not supported)."""
    values: dict[str, str] = {}
    try:
        text = path.read_text("utf-8", errors="replace")
    except OSError:
        return values
    for line in text.splitlines():
        match = _PROPERTY.match(line)
        if match and not line.lstrip().startswith(("#", "!")):
            values[match.group(1)] = match.group(2).strip()
    return values


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n")


def write_conf_dir(raw: dict[str, str], undo: Undo) -> str | None:
    """Create the private SPARK_CONF_DIR for this attempt; None when the listener jar is not there."""
    jar = local_jar()
    if not os.path.isfile(jar):
        return None
    source = original_conf_dir()
    user_defaults: dict[str, str] = {}
    user_text = ""
    target = tempfile.mkdtemp(prefix="runlink-spark-conf-")
    undo.remove_dir_later(target)
    if source is not None and source.is_dir():
        for entry in source.iterdir():
            if entry.name != "spark-defaults.conf":
                os.symlink(entry, os.path.join(target, entry.name))
        defaults = source / "spark-defaults.conf"
        if defaults.is_file():
            user_text = defaults.read_text("utf-8", errors="replace")
            user_defaults = read_properties(defaults)
    conf = build_spark_conf(raw, existing=user_defaults)
    lines = [user_text.rstrip("\n"), "", "# added by runlink for this task attempt (user values above win)"]
    for key in sorted(conf):
        if key in user_defaults and key not in LIST_KEYS:
            continue
        if key in user_defaults and conf[key] == user_defaults[key]:
            continue
        lines.append(f"{key} {_escape(conf[key])}")
    path = os.path.join(target, "spark-defaults.conf")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # it holds the token
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines).lstrip("\n") + "\n")
    return target


def inject_environment(raw: dict[str, str], undo: Undo, spark: bool = True) -> None:
    for name, value in _context_env(raw).items():
        if not os.environ.get(name):
            undo.set_env(name, value)
    if not spark:
        return
    conf_dir = write_conf_dir(raw, undo)
    if conf_dir is None:
        return
    undo.set_env("SPARK_CONF_DIR", conf_dir)
    jar = local_jar()
    dist = os.environ.get("SPARK_DIST_CLASSPATH", "")
    if jar not in dist.split(os.pathsep):
        undo.set_env("SPARK_DIST_CLASSPATH", f"{dist}{os.pathsep}{jar}" if dist else jar)
