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
# Every step that fails writes its name here (the lanes are separate processes), and the summary prints them: a run
# whose tests all passed but whose ruff, JUnit or a leg's set-up failed says which.
failed_steps=$results/failed-steps
failed() {  # failed STEP RC: record a failed step; returns 1
  echo "  $1 (exit $2)" >> "$failed_steps"
  return 1
}
echo "== ruff"
.venv/bin/ruff check python tests scripts || failed ruff $? || status=1
echo "== JUnit (jvm-listener)"
bash scripts/build-jar.sh --test || failed "JUnit (scripts/build-jar.sh --test)" $? || status=1
# Gradle's own JUnit reports join the pytest ones, so the summary counts the listener's tests too
for report in jvm-listener/build/test-results/*/TEST-*.xml; do
  [ -f "$report" ] && cp "$report" "$results/gradle-$(basename "$(dirname "$report")")-$(basename "$report")"
done
# One pytest process per suite: each suite has its own conftest helpers and session fixtures (trackers,
# Airflow homes, Spark sessions), and a crash in one cannot hide the others' results.
# Two lanes run side by side: the Airflow lane (suites that run Airflow processes, Airflow 2.11, the version matrix)
# and the rest (with the Spark 3.5 contract), split so that they end about together (by the JUnit timings of a full
# run). Much of the Airflow lane's time is spent waiting on schedulers, task processes and Spark start-up, so the
# other lane uses the idle core; every test port, home and PostgreSQL database is unique, so the lanes never meet.
# RUNLINK_TEST_LANES=1 runs everything in one lane, in order.
AIRFLOW_LANE=" airflow deployment syncer test-airflow2 test-matrix "
run_suite() {  # run_suite SUITE: one pytest process, its own JUnit file; returns non-zero when it failed
  local suite=$1 rc
  echo "== pytest $suite ($(( $(date +%s) - started ))s elapsed)"
  .venv/bin/python -m pytest -q -p no:cacheprovider --reruns 1 -rR --junitxml="$results/$(basename "$suite").xml" \
    "$suite"
  rc=$?
  [ $rc -eq 0 ] || [ $rc -eq 5 ] || failed "pytest $suite" $rc
}
run_extra() {  # run_extra scripts/test-X.sh: a leg in its own environment
  echo "== $1 ($(( $(date +%s) - started ))s elapsed)"
  PYTEST_ADDOPTS="--junitxml=$results/$(basename "$1" .sh).xml" bash "$1" || failed "$1" $?
}
run_lane() {  # run_lane airflow|rest: the lane's suites, then its extra legs; returns non-zero when any failed
  local lane=$1 failed=0 suite name extra
  for suite in tests/*/; do
    suite=${suite%/}
    name=$(basename "$suite")
    [ "$name" = vectors ] && continue
    ls "$suite"/test_*.py >/dev/null 2>&1 || continue
    if [ "${RUNLINK_TEST_LANES:-2}" != 1 ]; then
      case "$AIRFLOW_LANE" in *" $name "*) [ "$lane" = airflow ] || continue ;; *) [ "$lane" = rest ] || continue ;; esac
    fi
    run_suite "$suite" || failed=1
  done
  for extra in scripts/test-*.sh; do
    [ -f "$extra" ] || continue
    name=$(basename "$extra" .sh)
    if [ "${RUNLINK_TEST_LANES:-2}" != 1 ]; then
      case "$AIRFLOW_LANE" in *" $name "*) [ "$lane" = airflow ] || continue ;; *) [ "$lane" = rest ] || continue ;; esac
    fi
    run_extra "$extra" || failed=1
  done
  return $failed
}
if [ "${RUNLINK_TEST_LANES:-2}" = 1 ]; then
  run_lane all || status=1
else
  lane_log=$results/airflow-lane.log
  echo "== the Airflow lane runs alongside ($lane_log; printed when it ends)"
  run_lane airflow > "$lane_log" 2>&1 &
  lane_pid=$!
  run_lane rest || status=1
  wait $lane_pid || status=1
  echo "== the Airflow lane ($(( $(date +%s) - started ))s elapsed)"
  cat "$lane_log"
fi
echo "== summary ($(( $(date +%s) - started ))s)"
.venv/bin/python - "$results" <<'PY'
import sys, pathlib, collections, xml.etree.ElementTree as ET
counts = collections.defaultdict(lambda: [0, 0, 0])  # step -> tests, failed, skipped
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    step = "jvm-junit" if path.stem.startswith("gradle-") else path.stem  # one line for Gradle's per-class reports
    for suite in ET.parse(path).getroot().iter("testsuite"):
        counts[step][0] += int(suite.get("tests", 0))
        counts[step][1] += int(suite.get("failures", 0)) + int(suite.get("errors", 0))
        counts[step][2] += int(suite.get("skipped", 0))
for step, (tests, fail, skip) in counts.items():
    print(f"  {step:14} {tests - fail - skip:4} passed {fail:3} failed {skip:3} skipped")
tests, fail, skip = (sum(c[i] for c in counts.values()) for i in range(3))
print(f"{tests - fail - skip} passed, {fail} failed, {skip} skipped")
PY
if [ -s "$failed_steps" ]; then
  echo "== failed steps"
  cat "$failed_steps"
  # the first lines of each recorded failure (pytest's and Gradle's reports), so the end of the log says what broke
  grep -h -A6 -E '<(failure|error)[ >]' "$results"/*.xml 2>/dev/null | head -60 || true
fi
echo "== exit $status"
exit $status
