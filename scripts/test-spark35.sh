#!/usr/bin/env bash
# Spark 3.5 (Scala 2.12) compatibility of the Python side: a contract of tests/spark (real Spark + real tracker) in a
# second venv, .venv-spark35, with pyspark 3.5.x, runlink installed editable and the SAME listener jar as Spark 4.
#   bash scripts/test-spark35.sh [pytest args]     (scripts/test.sh runs it after the main suite)
# The contract is what depends on pyspark's own version: the Python listener, call sites in process, the conf, a
# streaming query (pyspark 3.5 ships no Spark Connect server: the Connect tests run on 4.x only). The jar under spark-submit on 3.5 is the matrix's spark:3.5 leg
# (scripts/test-matrix.sh). RUNLINK_SPARK35_ALL=1 runs the whole of tests/spark instead.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${RUNLINK_PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=.venv-spark35
stamp=$VENV/.runlink-installed
want=$( (cat pyproject.toml scripts/constraints.txt; echo "pyspark==3.5.*") | sha1sum | cut -c1-12)
# shellcheck source=scripts/venv-cache.sh
. scripts/venv-cache.sh
cached_venv "$VENV" spark35 "$want" "$PY"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "test-spark35: installing pyspark 3.5 + runlink into $VENV"
  # the main constraints pin pyspark 4: keep every other pin
  grep -v -i '^pyspark' scripts/constraints.txt > "$VENV/constraints.txt"
  "$VENV/bin/pip" install -q --upgrade pip
  "$VENV/bin/pip" install -q -c "$VENV/constraints.txt" "pyspark==3.5.*" -e ".[server]" \
    pytest pytest-timeout requests chispa "pandas<3" pyarrow jinja2  # jinja2: the tracker UI needs it (not yet in the server extra)
  echo "$want" > "$stamp"
fi
editable_here "$VENV"
"$VENV/bin/python" - <<'PY'
import os, pyspark
assert pyspark.__version__.startswith("3.5."), pyspark.__version__
jars = os.listdir(os.path.join(os.path.dirname(pyspark.__file__), "jars"))
assert any(j.startswith("spark-core_2.12-3.5") for j in jars), "pyspark 3.5 must bring Scala 2.12 jars"
print(f"test-spark35: pyspark {pyspark.__version__} (Scala 2.12)")
PY
[ -f python/runlink/jars/runlink-spark-listener.jar ] || bash scripts/build-jar.sh
# The same jar as Spark 4: built once, against Spark 4's jars, used unchanged here.
if [ "${RUNLINK_SPARK35_ALL:-0}" = 1 ]; then
  selection=(tests/spark)
else
  selection=(tests/spark/test_pyspark_listener.py tests/spark/test_callsites_in_process.py tests/spark/test_conf.py
             tests/spark/test_streaming.py::test_streaming_queries_under_their_task_attempt)
fi
exec "$VENV/bin/python" -m pytest -q -p no:cacheprovider -m spark "${selection[@]}" "$@"
