"""runlink's start-up hook for a PySpark driver launched by `spark-submit` with runlink's conf.

`runlink.spark.conf()` lists this file in `spark.submit.pyFiles`; Spark's PythonRunner puts its folder on the
driver's PYTHONPATH, so the interpreter imports it at start-up (see runlink/spark/capture_hook.py). It names the
driver's Spark jobs, stages and queries by the user's Python lines, then runs the sitecustomize it shadows (the
interpreter's or the environment's own). Never raises: a driver without runlink installed just runs.
"""

import importlib.util
import os
import sys


def _run_shadowed() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        folder = os.path.abspath(entry or os.getcwd())
        if folder == here:
            continue
        candidate = os.path.join(folder, "sitecustomize.py")
        if os.path.isfile(candidate):
            spec = importlib.util.spec_from_file_location("_runlink_shadowed_sitecustomize", candidate)
            if spec is not None and spec.loader is not None:
                spec.loader.exec_module(importlib.util.module_from_spec(spec))
            return


try:
    from runlink.spark.capture_hook import install_on_import

    install_on_import()
except Exception:  # runlink is not installed where this driver runs, or is too old: nothing to name
    pass
try:
    _run_shadowed()
except Exception as exc:  # the shadowed file's own failure: Python would print it and go on, so do we
    print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback:\n{type(exc).__name__}: {exc}", file=sys.stderr)
