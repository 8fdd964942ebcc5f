"""Run one DAG of tests/ui/dags with dag.test() in this (fresh) interpreter: a task process of its own, as a
worker would be, reporting to the tracker named by RUNLINK_URL / RUNLINK_TOKEN.

    python run_dag.py DAG_ID        (AIRFLOW_HOME etc. come from the environment the test sets)
Prints RUNLINK_RUN_ID=<json> and RUNLINK_STATE=<state>.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(dag_id: str) -> int:
    spec = importlib.util.spec_from_file_location("runlink_ui_dags", HERE / "dags" / "runlink_ui_dags.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    dag_run = getattr(module, dag_id).test()
    print("RUNLINK_RUN_ID=" + json.dumps(dag_run.run_id))
    print("RUNLINK_STATE=" + str(getattr(dag_run.state, "value", dag_run.state)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
