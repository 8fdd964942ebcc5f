"""Helpers shared by the tests (and the benchmarks that reuse them), imported one way: `from support.x import y`.

How tests import, everywhere under tests/: no test folder has an `__init__.py`, so pytest's default "prepend"
import mode puts each test's own folder on sys.path (and `tests/` itself, for the root conftest.py). A folder's
own helper module is imported by its plain name (`from syncer_helpers import ...`, `import sparkrun`; module
names are unique across tests/); anything a second folder uses lives here and is imported as `support.x`.
Fixtures are shared through conftest.py files (pytest finds them), never imported. Scripts outside pytest insert
`tests/` (and a folder of their own, if they use its helpers) into sys.path themselves. `tests/airflow` could not
be imported as a package anyway: it would shadow Airflow. A free port comes from
`runlink.tracker.process.free_port`, a real tracker from `support.tracker`, a wait from `support.waiting`.
"""
