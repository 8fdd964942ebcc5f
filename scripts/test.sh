#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what it needs, then runs every suite and fails if any fails.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
status=0
echo "== ruff"
.venv/bin/ruff check python tests scripts || status=1
echo "== JUnit (jvm-listener)"
bash scripts/build-jar.sh --test || status=1
echo "== pytest (Python $(.venv/bin/python -c 'import sys;print(sys.version.split()[0])'), SQLite and PostgreSQL)"
.venv/bin/python -m pytest -q -p no:cacheprovider "$@" || status=1
for extra in scripts/test-*.sh; do
  [ -f "$extra" ] || continue
  echo "== $extra"
  bash "$extra" || status=1
done
exit $status
