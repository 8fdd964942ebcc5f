"""Python call sites without `track_session`: the capture wrappers installed as soon as PySpark's SQL API is
imported, in a process that asked for runlink's Spark conf or runs a tracked `spark-submit` driver.

A `spark-submit app.py` driver never calls runlink, so nothing would install the wrappers and Spark would name
its stages after its own threads (`$anonfun$withThreadLocalCaptured$1 at CompletableFuture.java:1768`) and its
queries after py4j's reflection (`NativeMethodAccessorImpl.java:0`). `runlink.spark.conf()` therefore puts
`driver_site/sitecustomize.py` into `spark.submit.pyFiles`: Spark's PythonRunner puts that file's folder on the
driver's PYTHONPATH, the interpreter imports it at start-up, and it calls `install_on_import()` here (then runs
the interpreter's own sitecustomize, which it shadows). A process that builds its SparkSession with runlink's conf
itself (a task, a notebook, pytest) gets the same from `conf()`.

The hook waits for the `pyspark` package to finish importing (it imports `pyspark.sql` last; wrapping earlier
would import PySpark in processes that never use it, or reach half-imported modules); it costs nothing until then
and is removed once it fired.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import logging
import sys
import threading
from typing import Any

log = logging.getLogger("runlink.spark")

_TRIGGER = "pyspark"
_lock = threading.Lock()
_pending: _AfterImport | None = None


def _install() -> None:
    try:
        from runlink.spark.pyspark_listener import install_callsite_capture

        install_callsite_capture()
    except Exception as exc:  # never hurt the user's import
        log.debug("runlink: call-site capture not installed: %r", exc)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds `pyspark` like the other finders, and runs the capture's install once its module has run."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> Any:
        if fullname != _TRIGGER:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        loader = spec.loader
        original = loader.exec_module

        def exec_module(module: Any) -> None:
            original(module)
            _remove()
            _install()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _remove() -> None:
    global _pending
    with _lock:
        if _pending is not None and _pending in sys.meta_path:
            sys.meta_path.remove(_pending)
        _pending = None


def install_on_import() -> None:
    """Install the call-site capture now if PySpark's SQL API is loaded, else when it is; idempotent."""
    global _pending
    if sys.modules.get("pyspark.sql") is not None:
        _install()
        return
    with _lock:
        if _pending is None:
            _pending = _AfterImport()
            sys.meta_path.insert(0, _pending)
