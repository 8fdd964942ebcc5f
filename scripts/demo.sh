#!/usr/bin/env bash
# The demo: installs what it needs (scripts/setup.sh), then runs a real Airflow DAG with real Spark jobs against
# the embedded tracker (SQLite under $RUNLINK_HOME, default ~/.runlink) and prints the run tree.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/runlink demo "$@"
