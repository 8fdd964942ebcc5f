#!/usr/bin/env bash
# Installs everything runlink needs on a fresh Debian machine, idempotently:
# Debian packages (Java, Gradle, JUnit, chromium), the .venv with runlink and its extras, the listener jar.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${RUNLINK_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3

need_apt=()
command -v javac >/dev/null 2>&1 || need_apt+=(openjdk-17-jdk-headless)
command -v gradle >/dev/null 2>&1 || need_apt+=(gradle)
[ -f /usr/share/java/junit4.jar ] || need_apt+=(junit4)
[ -f /usr/share/java/hamcrest-core.jar ] || need_apt+=(libhamcrest-java)
if [ "${RUNLINK_SKIP_BROWSER:-0}" != 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

stamp=.venv/.runlink-installed
want=$(cat pyproject.toml scripts/constraints.txt | sha1sum | cut -c1-12)
# shellcheck source=scripts/venv-cache.sh
. scripts/venv-cache.sh
cached_venv .venv main "$want" "$PY"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages into .venv"
  .venv/bin/pip install -q --upgrade pip
  # the Celery provider and redis: tests/deployment runs Airflow with CeleryExecutor and a real Redis broker
  .venv/bin/pip install -q -c scripts/constraints.txt -e ".[server,spark,airflow,dev]" \
    apache-airflow-providers-apache-spark apache-airflow-providers-celery redis
  # pyspark-client (pulled by the Spark provider) overwrites pyspark's Python files: reinstall pyspark last.
  .venv/bin/pip install -q --force-reinstall --no-deps -c scripts/constraints.txt pyspark
  echo "$want" > "$stamp"
fi
editable_here .venv
.venv/bin/python - <<'PY'
import os, pyspark
jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
core = [j for j in os.listdir(jars) if j.startswith("spark-core_")]
assert core and pyspark.__version__ in core[0], f"pyspark {pyspark.__version__} does not match its jars {core}"
PY
bash scripts/build-jar.sh
