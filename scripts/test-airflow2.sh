#!/usr/bin/env bash
# Runs tests/airflow and tests/syncer on Airflow 2.11 in its own venv (.venv-airflow2), next to the main .venv
# (Airflow 3).
# Airflow 2.11 needs SQLAlchemy 1.4 while the tracker needs 2.x, so the tracker the tests talk to runs from
# the main .venv (RUNLINK_SERVER_PYTHON); runlink itself is installed here without the server extra.
# The venv is installed once (outside the clone: scripts/venv-cache.sh) and re-installed only when this script or
# pyproject.toml change (stamp file).
# RUNLINK_AIRFLOW2_CLOUD=0 leaves out the amazon/databricks/google providers (about 150 packages): their tests
# are then skipped, and say so.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${RUNLINK_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv-airflow2
CLOUD=${RUNLINK_AIRFLOW2_CLOUD:-1}
stamp=$VENV/.runlink-installed
want=$( (cat pyproject.toml scripts/test-airflow2.sh; echo "cloud=$CLOUD") | sha1sum | cut -c1-12)
# shellcheck source=scripts/venv-cache.sh
. scripts/venv-cache.sh
cached_venv $VENV airflow2 "$want" "$PY"
if [ ! -x $VENV/bin/python ]; then
  "$PY" -m venv $VENV
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-airflow2: installing Airflow 2.11 into $VENV"
  providers=("apache-airflow-providers-apache-spark<6")
  if [ "$CLOUD" = 1 ]; then
    # the operators whose payloads tests/airflow/test_cloud_operators.py checks; resolved together with 2.11
    providers+=(apache-airflow-providers-amazon apache-airflow-providers-databricks apache-airflow-providers-google)
  fi
  $VENV/bin/pip install -q --upgrade pip
  $VENV/bin/pip install -q "apache-airflow==2.11.*" "${providers[@]}" \
    "pytest>=8" "pytest-timeout>=2.3" "requests>=2.31" "fastjsonschema>=2.19"
  $VENV/bin/pip install -q --no-deps -e .
  # pyspark-client (pulled by the Spark provider) overwrites pyspark's Python files: reinstall pyspark last.
  $VENV/bin/pip install -q --force-reinstall --no-deps "pyspark==4.2.0"
  echo "$want" > "$stamp"
fi
editable_here $VENV
$VENV/bin/python - <<'PY'
import os, pyspark, airflow
jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
core = [j for j in os.listdir(jars) if j.startswith("spark-core_")]
assert core and pyspark.__version__ in core[0], f"pyspark {pyspark.__version__} does not match its jars {core}"
assert airflow.__version__.startswith("2.11"), airflow.__version__
print(f"test-airflow2: Airflow {airflow.__version__}, pyspark {pyspark.__version__}")
PY
if [ "$CLOUD" != 1 ]; then
  echo "test-airflow2: RUNLINK_AIRFLOW2_CLOUD=0: the EMR, Databricks and Dataproc tests are skipped on 2.11"
fi
export RUNLINK_SERVER_PYTHON="$(pwd)/.venv/bin/python"
rc=0
# tests/airflow less the demo (the README's demo command runs on the main environment; here it only repeated the
# plugin's tests that follow, at 80-120 s)
$VENV/bin/python -m pytest -q -p no:cacheprovider -m airflow tests/airflow --deselect tests/airflow/test_demo.py \
  "$@" || rc=$?
# The syncer end to end against a real Airflow 2.11 standalone (API v1): the tests and the syncer run from the
# main .venv (the tracker needs it), the standalone and the monitor DAG from $VENV. RUNLINK_AIRFLOW2_SYNCER=0 skips.
if [ "${RUNLINK_AIRFLOW2_SYNCER:-1}" = 1 ]; then
  echo "test-airflow2: tests/syncer against Airflow 2.11"
  addopts=${PYTEST_ADDOPTS:-}  # its own JUnit file when test.sh asks for one (--junitxml=...xml)
  RUNLINK_SYNCER_AIRFLOW_PYTHON="$(pwd)/$VENV/bin/python" PYTEST_ADDOPTS="${addopts//.xml/-syncer.xml}" \
    .venv/bin/python -m pytest -q -p no:cacheprovider -m airflow tests/syncer "$@" || rc=$?
fi
# One deployment, one run tree on a real Airflow 2.11 standalone (plugin + syncer, registered without --uid): the
# same tests as on Airflow 3; the CeleryExecutor leg skips on 2.11 and says why. RUNLINK_AIRFLOW2_DEPLOYMENT=0 skips.
if [ "${RUNLINK_AIRFLOW2_DEPLOYMENT:-1}" = 1 ]; then
  echo "test-airflow2: tests/deployment against Airflow 2.11"
  addopts=${PYTEST_ADDOPTS:-}
  RUNLINK_SYNCER_AIRFLOW_PYTHON="$(pwd)/$VENV/bin/python" PYTEST_ADDOPTS="${addopts//.xml/-deployment.xml}" \
    .venv/bin/python -m pytest -q -p no:cacheprovider -rs -m airflow tests/deployment/test_deployment_e2e.py "$@" \
    || rc=$?
fi
exit $rc
