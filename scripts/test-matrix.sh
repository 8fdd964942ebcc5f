#!/usr/bin/env bash
# The compatibility matrix (issue 21): one short contract test per Spark, Airflow and Python version teams run.
#   bash scripts/test-matrix.sh                      every leg (scripts/test.sh runs it after the main suites)
#   bash scripts/test-matrix.sh spark:3.3 python     some legs: a kind (spark, airflow, python) or kind:version
# Legs
#   spark 3.3 3.4 3.5 4.0 4.1 4.2   tests/contract/contract_spark.py: the SAME listener jar (built against Spark 4.2)
#                                   under spark-submit of each pyspark (Scala 2.12 on 3.x, 2.13 on 4.x)
#   airflow 3.0                     the plugin's contract tests from tests/airflow (SparkSubmitOperator, Bash
#                                   spark-submit, a @task with a metric, a failure) and the syncer's from tests/syncer;
#                                   Airflow 2.11 is scripts/test-airflow2.sh, the latest 3.x the main suite
#   python 3.10 3.11 3.12 3.13      `runlink` without extras, installed from a wheel of this clone, passes tests/unit
#                                   and the client tests that need no tracker
# Environments live outside the clone (CI runs in a fresh clone): ${RUNLINK_CACHE:-~/.cache/runlink}/venv-<leg>-<hash
# of what it installs>, built once (a stamp file marks a complete one), then reused; pip's cache serves a rebuild.
# Trackers run from the main .venv. Each leg prints one line `matrix: <leg>: <result> (<seconds>s)`; a failed leg
# fails the run; a leg whose interpreter this machine lacks is skipped and says so.
# RUNLINK_MATRIX_PREPARE=1 only builds the environments (to warm a CI machine's cache).
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
CACHE=${RUNLINK_CACHE:-$HOME/.cache/runlink}
MAIN=$ROOT/.venv/bin/python
JUNIT=${PYTEST_ADDOPTS:-}  # scripts/test.sh passes --junitxml=<dir>/test-matrix.xml: each leg gets its own file
unset PYTEST_ADDOPTS
SELECTED=("$@")
mkdir -p "$CACHE"
[ -x "$MAIN" ] || { echo "matrix: $MAIN is missing (bash scripts/setup.sh creates it)" >&2; exit 1; }
[ -f python/runlink/jars/runlink-spark-listener.jar ] || bash scripts/build-jar.sh || exit 1

status=0
summary=()
started_all=$(date +%s)

selected() {  # selected KIND VERSION: is this leg asked for?
  [ ${#SELECTED[@]} -eq 0 ] && return 0
  local s
  for s in "${SELECTED[@]}"; do
    if [ "$s" = "$1" ] || [ "$s" = "$1:$2" ]; then return 0; fi
  done
  return 1
}

find_python() {  # find_python 3.10: a working CPython 3.10 interpreter (pyenv's, else on PATH), or nothing
  local want=$1 candidate
  for candidate in $(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"$want".*/bin/python 2>/dev/null | sort -V -r) \
                   "python$want"; do
    if "$candidate" -c "import sys; assert '%d.%d' % sys.version_info[:2] == '$want'" >/dev/null 2>&1; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

venv_for() {  # venv_for NAME PYTHON 'pip args' ['pip args' ...]: a cached venv where each pip step ran, in order
  local name=$1 python=$2 hash dir
  shift 2
  hash=$( { "$python" -c 'import sys; print(sys.version)'; printf '%s\n' "$@"; } | sha1sum | cut -c1-12)
  dir=$CACHE/venv-$name-$hash
  (
    flock 9
    if [ ! -f "$dir/.runlink-matrix-ready" ]; then
      echo "matrix: building $dir (once; reused by later runs)" >&2
      rm -rf "$dir"
      "$python" -m venv "$dir" >&2 || exit 1
      "$dir/bin/pip" install -q --upgrade pip >&2 || exit 1
      set -f  # version specifiers such as pyspark==3.3.* are not file patterns
      for step in "$@"; do
        # shellcheck disable=SC2086 # each step is one pip command line
        "$dir/bin/pip" install -q $step >&2 || exit 1
      done
      touch "$dir/.runlink-matrix-ready"
      for stale in "$CACHE/venv-$name"-*; do  # this leg's environments for what it installed before
        [ "$stale" = "$dir" ] || [ "$stale" = "$dir.lock" ] || rm -rf "$stale"
      done
    fi
  ) 9>"$dir.lock" || return 1
  echo "$dir"
}

junit_for() {  # junit_for SLUG: the --junitxml option of one leg (when scripts/test.sh asked for JUnit files)
  if [[ "$JUNIT" == *--junitxml=* ]]; then
    echo "${JUNIT//.xml/-$1.xml}"
  fi
}

run_leg() {  # run_leg LABEL COMMAND...: runs one leg, prints its result line and wall time
  local label=$1 started log rc result
  shift
  if [ "${RUNLINK_MATRIX_PREPARE:-0}" = 1 ]; then
    summary+=("matrix: $label: environment ready (RUNLINK_MATRIX_PREPARE=1: not run)")
    return 0
  fi
  started=$(date +%s)
  log=$(mktemp)
  echo "== matrix: $label"
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  result=$(grep -E '^=* ?[0-9]+ (passed|failed|skipped|errors?|deselected)|no tests ran' "$log" | tail -1 \
           | sed -E 's/^=+ //; s/ =+$//; s/ in [0-9.]+s.*$//')
  rm -f "$log"
  [ -n "$result" ] || result="no pytest result"
  if [ "$rc" -ne 0 ]; then
    status=1
    result="FAILED (exit $rc): $result"
  fi
  summary+=("matrix: $label: $result ($(( $(date +%s) - started ))s)")
  echo "${summary[-1]}"
}

skip_leg() {  # skip_leg LABEL REASON: a leg this machine cannot run; not a failure
  summary+=("matrix: $1: SKIPPED: $2")
  echo "${summary[-1]}"
}

# ---------------------------------------------------------------- Spark: one listener jar on every Spark
spark_leg() {  # spark_leg 3.3 PYTHON_VERSION
  local minor=$1 pyver=$2 python venv_python build version scala
  selected spark "$minor" || return 0
  local t0
  t0=$(date +%s)
  if [ "$minor" = 4.2 ]; then
    venv_python=$MAIN  # the main .venv's pyspark (scripts/constraints.txt) is Spark 4.2
  else
    python=$(find_python "$pyver") || { skip_leg "spark $minor" "no Python $pyver on this machine"; return 0; }
    venv_python=$(venv_for "spark-$minor" "$python" "pyspark==$minor.*")/bin/python \
      || { status=1; summary+=("matrix: spark $minor: FAILED: could not build its venv"); return 0; }
  fi
  build=$("$venv_python" - <<'PY'
import os, pyspark
core = [j for j in os.listdir(os.path.join(os.path.dirname(pyspark.__file__), "jars")) if j.startswith("spark-core_")]
print(pyspark.__version__, core[0].split("_")[1].split("-")[0])
PY
  ) || { status=1; summary+=("matrix: spark $minor: FAILED: pyspark does not import"); return 0; }
  read -r version scala <<<"$build"
  [[ "$version" == "$minor".* ]] || { status=1; summary+=("matrix: spark $minor: FAILED: got pyspark $version"); return 0; }
  echo "matrix: spark $version: environment ready in $(( $(date +%s) - t0 ))s"
  # shellcheck disable=SC2046 # junit_for prints nothing or one option
  RUNLINK_MATRIX_SPARK_PYTHON=$venv_python run_leg "spark $version (scala $scala)" \
    "$MAIN" -m pytest -q -p no:cacheprovider --reruns 1 -rR $(junit_for "spark-$minor") tests/contract/contract_spark.py
}

# ---------------------------------------------------------------- Airflow 3.0
# Airflow 3.0 declares no upper bounds on its API stack, and today's releases break its in-process execution API
# (dag.test(): "Remote server returned validation error") and its JWT login (PyJWT 2.11+: "Issuer (iss) must be a
# string"); Airflow's own constraints file (on GitHub, not reachable here) pins these, at the versions of 3.0's days:
AIRFLOW_30_PINS="fastapi==0.116.* starlette<0.48 cadwyn==5.4.* pydantic==2.11.* httpx==0.28.* pyjwt==2.10.*"

airflow_leg() {  # airflow_leg 3.0
  local minor=$1 python venv t0 version
  selected airflow "$minor" || return 0
  t0=$(date +%s)
  python=$(find_python 3.11) || { skip_leg "airflow $minor" "no Python 3.11 on this machine"; return 0; }
  # pyspark-client (pulled by the Spark provider) overwrites pyspark's Python files: pyspark is reinstalled last
  # (then once more with its dependencies: py4j)
  venv=$(venv_for "airflow-$minor" "$python" \
    "apache-airflow==$minor.* apache-airflow-providers-apache-spark pytest>=8 pytest-timeout>=2.3 \
     pytest-rerunfailures>=14 requests>=2.31 fastjsonschema>=2.19 setuptools>=69 wheel $AIRFLOW_30_PINS" \
    "--force-reinstall --no-deps pyspark==4.2.0" "pyspark==4.2.0") \
    || { status=1; summary+=("matrix: airflow $minor: FAILED: could not build its venv"); return 0; }
  # runlink itself, editable from THIS clone (its entry points register the plugin): redone when the clone moved
  local want_editable
  want_editable="$ROOT $(sha1sum pyproject.toml | cut -c1-12)"
  if [ "$(cat "$venv/.runlink-editable" 2>/dev/null)" != "$want_editable" ]; then
    "$venv/bin/pip" install -q --no-deps --no-build-isolation -e "$ROOT" \
      || { status=1; summary+=("matrix: airflow $minor: FAILED: runlink did not install"); return 0; }
    echo "$want_editable" > "$venv/.runlink-editable"
  fi
  version=$("$venv/bin/python" -c 'import airflow; print(airflow.__version__)' 2>/dev/null | tail -1)
  [[ "$version" == "$minor".* ]] || { status=1; summary+=("matrix: airflow $minor: FAILED: got $version"); return 0; }
  echo "matrix: airflow $version: environment ready in $(( $(date +%s) - t0 ))s"
  # the plugin in dag.test() (this venv), the tracker from the main .venv (SQLAlchemy 2)
  # shellcheck disable=SC2046
  RUNLINK_SERVER_PYTHON=$MAIN run_leg "airflow $version plugin" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --reruns 1 -rR $(junit_for "airflow-$minor-plugin") \
    tests/airflow/test_e2e_spark.py tests/airflow/test_e2e_tracking.py::test_retry_error_params_logs_metrics
  # the syncer (main .venv) against a real `airflow standalone` of this venv (API v2)
  # shellcheck disable=SC2046
  RUNLINK_SYNCER_AIRFLOW_PYTHON=$venv/bin/python run_leg "airflow $version syncer" \
    "$MAIN" -m pytest -q -p no:cacheprovider --reruns 1 -rR $(junit_for "airflow-$minor-syncer") \
    tests/syncer/test_e2e_syncer.py::test_one_sync_equals_airflow_and_a_second_writes_nothing \
    tests/syncer/test_merge_orders.py
}

# ---------------------------------------------------------------- Python: the agent package without extras
WHEEL_DIR=""
build_wheel() {  # the runlink wheel of this clone, built once per run from a copy (the clone stays clean)
  [ -n "$WHEEL_DIR" ] && return 0
  local src
  WHEEL_DIR=$(mktemp -d)
  src=$WHEEL_DIR/src
  mkdir -p "$src"
  tar -cf - --exclude=__pycache__ --exclude='*.egg-info' pyproject.toml README.md python | tar -xf - -C "$src"
  "$MAIN" -m pip wheel -q --no-deps -w "$WHEEL_DIR" "$src" >/dev/null
}

python_leg() {  # python_leg 3.12
  local minor=$1 python venv wheel t0
  selected python "$minor" || return 0
  t0=$(date +%s)
  python=$(find_python "$minor") || { skip_leg "python $minor" "no Python $minor interpreter on this machine"; return 0; }
  # pandas (and numpy): test tools for log_dataframe's pandas path, not runlink dependencies
  venv=$(venv_for "python-$minor" "$python" "pytest>=8 pytest-timeout>=2.3 pytest-rerunfailures>=14 pandas>=2") \
    || { status=1; summary+=("matrix: python $minor: FAILED: could not build its venv"); return 0; }
  build_wheel || { status=1; summary+=("matrix: python $minor: FAILED: the wheel did not build"); return 0; }
  wheel=$(ls "$WHEEL_DIR"/runlink-*.whl)
  # the install is part of the leg: the package, then its dependencies (from pip's cache after the first run)
  "$venv/bin/pip" install -q --force-reinstall --no-deps "$wheel" && "$venv/bin/pip" install -q "$wheel" \
    || { status=1; summary+=("matrix: python $minor: FAILED: runlink did not install"); return 0; }
  "$venv/bin/python" - "$venv" <<'PY' || { status=1; summary+=("matrix: python $minor: FAILED: import"); return 0; }
import sys, runlink
assert runlink.__file__.startswith(sys.argv[1]), f"runlink imported from {runlink.__file__}, not the installed wheel"
for extra in ("fastapi", "sqlalchemy", "airflow", "pyspark"):
    assert extra not in sys.modules, f"importing runlink imported {extra}"
PY
  echo "matrix: python $("$venv/bin/python" -c 'import platform; print(platform.python_version())'):" \
       "environment ready in $(( $(date +%s) - t0 ))s"
  # shellcheck disable=SC2046
  # the trackers those tests start run from the main .venv (this one has runlink without the server extra)
  RUNLINK_SERVER_PYTHON=$MAIN run_leg "python $("$venv/bin/python" -c 'import platform; print(platform.python_version())')" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider --reruns 1 -rR $(junit_for "python-$minor") \
    tests/unit tests/client --ignore=tests/client/test_e2e_tracker.py
}

spark_leg 3.3 3.10  # pyspark 3.3 predates Python 3.11 support
spark_leg 3.4 3.11
spark_leg 3.5 3.11
spark_leg 4.0 3.11
spark_leg 4.1 3.11
spark_leg 4.2 3.11
airflow_leg 3.0
for minor in 3.10 3.11 3.12 3.13; do
  python_leg "$minor"
done
[ -n "$WHEEL_DIR" ] && rm -rf "$WHEEL_DIR"

echo "== matrix summary ($(( $(date +%s) - started_all ))s)"
printf '%s\n' "${summary[@]}"
exit $status
