"""Helpers shared by the tests (and the benchmarks that reuse them), imported one way: `from support.x import y`.

`tests/` is on sys.path because the root `tests/conftest.py` lives in a folder without `__init__.py` (pytest's
default "prepend" import mode puts that folder first); scripts outside pytest insert `tests/` themselves. A free
port comes from `runlink.tracker.process.free_port`, a real tracker from `support.tracker`.
"""
