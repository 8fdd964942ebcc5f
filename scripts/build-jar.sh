#!/usr/bin/env bash
# Builds the Spark listener jar with Debian's Gradle 4.4.1 (offline) and copies it to
# python/runlink/jars/runlink-spark-listener.jar, where the package ships it.
#   bash scripts/build-jar.sh          build (skipped when the inputs did not change)
#   bash scripts/build-jar.sh --test   also run the JUnit tests (skipped when neither sources nor vectors changed)
#   --force                            ignore the up-to-date stamps
# Gradle 4.4.1 runs on Java 17 here (Debian patches it); it compiles to Java 8 bytecode against the jars that
# pyspark ships (SPARK_JARS_DIR overrides where they are).
set -euo pipefail
cd "$(dirname "$0")/.."

run_tests=0
force=0
for arg in "$@"; do
  case "$arg" in
    --test) run_tests=1 ;;
    --force) force=1 ;;
    *) echo "usage: $0 [--test] [--force]" >&2; exit 2 ;;
  esac
done

for tool in java gradle; do
  command -v "$tool" >/dev/null 2>&1 || { echo "build-jar: $tool is missing (bash scripts/setup.sh installs it)" >&2; exit 1; }
done

if [ -z "${SPARK_JARS_DIR:-}" ]; then
  [ -x .venv/bin/python ] || { echo "build-jar: .venv is missing (bash scripts/setup.sh creates it)" >&2; exit 1; }
  SPARK_JARS_DIR=$(.venv/bin/python -c 'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
fi
[ -d "$SPARK_JARS_DIR" ] || { echo "build-jar: no Spark jars at $SPARK_JARS_DIR" >&2; exit 1; }

built=jvm-listener/build/libs/runlink-spark-listener.jar
shipped=python/runlink/jars/runlink-spark-listener.jar
stamps=jvm-listener/build/stamps
mkdir -p "$stamps" python/runlink/jars

# Content hashes of what each step reads; the Spark version counts (its jar names carry it).
hash_of() {
  { find "$@" -type f -print0 2>/dev/null | sort -z | xargs -0 sha1sum
    ls "$SPARK_JARS_DIR" | grep -E '^(spark-core|scala-library)' || true
    java -version 2>&1 | head -1
  } | sha1sum | cut -c1-40
}
jar_hash=$(hash_of jvm-listener/src/main build.gradle settings.gradle pyproject.toml)
test_hash=$(hash_of jvm-listener/src build.gradle settings.gradle pyproject.toml tests/vectors python/runlink/protocol/schema)

tasks=()
if [ $force = 1 ] || [ ! -f "$shipped" ] || [ "$(cat "$stamps/jar" 2>/dev/null)" != "$jar_hash" ]; then
  tasks+=(:jvm-listener:jar)
fi
if [ $run_tests = 1 ] && { [ $force = 1 ] || [ "$(cat "$stamps/test" 2>/dev/null)" != "$test_hash" ]; }; then
  tasks+=(:jvm-listener:test :jvm-listener:memoryTest)
fi
if [ ${#tasks[@]} -eq 0 ]; then
  echo "build-jar: up to date ($shipped)"
  exit 0
fi

gradle_args=(--offline --no-daemon --quiet -PsparkJarsDir="$SPARK_JARS_DIR")
[ $force = 1 ] && gradle_args+=(--rerun-tasks)  # Gradle's own up-to-date checks would skip the work
start=$(date +%s)
# Debian's gradle script prints `java -version` on stderr: keep only real messages.
if ! gradle "${gradle_args[@]}" "${tasks[@]}" \
    2> >(grep -v -E '^(openjdk version|OpenJDK Runtime Environment|OpenJDK 64-Bit Server VM)' >&2); then
  # --quiet hides Gradle's test report: show the failures themselves
  grep -h -A12 '<failure' jvm-listener/build/test-results/*/*.xml 2>/dev/null | head -80 >&2 || true
  echo "build-jar: FAILED" >&2
  exit 1
fi
cp "$built" "$shipped"
echo "$jar_hash" > "$stamps/jar"
if [ $run_tests = 1 ]; then
  echo "$test_hash" > "$stamps/test"
  echo "build-jar: JUnit tests passed"
fi
echo "build-jar: built $shipped in $(( $(date +%s) - start ))s"
