#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then runs every suite and fails if any fails.
#   bash scripts/test.sh                 everything (ruff, JUnit, each pytest suite, Spark 3.5, Airflow 2.11)
#   bash scripts/test.sh tests/tracker   just that pytest selection (after set-up)
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit 1
if [ $# -gt 0 ]; then
  exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
fi
status=0
results=test-artifacts/junit
rm -rf "$results" && mkdir -p "$results"
started=$(date +%s)
echo "== ruff"
.venv/bin/ruff check python tests scripts || status=1
echo "== JUnit (jvm-listener)"
bash scripts/build-jar.sh --test || status=1
# One pytest process per suite: each suite has its own conftest helpers and session fixtures (trackers,
# Airflow homes, Spark sessions), and a crash in one cannot hide the others' results.
for suite in tests/*/; do
  suite=${suite%/}
  [ "$(basename "$suite")" = vectors ] && continue
  ls "$suite"/test_*.py >/dev/null 2>&1 || continue
  echo "== pytest $suite ($(( $(date +%s) - started ))s elapsed)"
  # One rerun of a failed test: the end-to-end suites start real Spark, Airflow and trackers on 2 cores, where a
  # deadline can pass under load; a test that fails twice fails the run, and reruns are listed in the output.
  .venv/bin/python -m pytest -q -p no:cacheprovider --reruns 1 -rR --junitxml="$results/$(basename "$suite").xml" "$suite"
  rc=$?
  # 5 = no tests collected (for example every test deselected by a marker): not a failure of the suite
  if [ $rc -ne 0 ] && [ $rc -ne 5 ]; then status=1; fi
done
for extra in scripts/test-*.sh; do
  [ -f "$extra" ] || continue
  echo "== $extra ($(( $(date +%s) - started ))s elapsed)"
  PYTEST_ADDOPTS="--junitxml=$results/$(basename "$extra" .sh).xml" bash "$extra" || status=1
done
echo "== summary ($(( $(date +%s) - started ))s)"
.venv/bin/python - "$results" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
passed = failed = skipped = 0
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    for suite in ET.parse(path).getroot().iter("testsuite"):
        tests, fail = int(suite.get("tests", 0)), int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        skip = int(suite.get("skipped", 0))
        print(f"  {path.stem:14} {tests - fail - skip:4} passed {fail:3} failed {skip:3} skipped")
        passed, failed, skipped = passed + tests - fail - skip, failed + fail, skipped + skip
print(f"{passed} passed, {failed} failed, {skipped} skipped")
PY
exit $status
