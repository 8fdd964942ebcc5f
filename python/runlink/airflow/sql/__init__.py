"""The statements Airflow's SQL hooks run inside a tracked task, recorded under its attempt (issue 23).

`install(raw, settings)` runs inside the wrapped `execute()` of a tracked task (the listener's wrapper) and
returns a callable that records what was submitted and never finished, then puts the hooks' methods back:
nothing is patched outside a tracked task, and a task opted out (`runlink_tracking=False`, `exclude_tasks`)
never gets here. One module per hook family:

- `dbapi`: common-sql's `DbApiHook._run_command` (PostgreSQL, Redshift via redshift_connector, Snowflake, Trino,
  MySQL, Databricks SQL, ...: every DbApiHook-based provider runs each statement through it);
- `redshift_data`: `RedshiftDataHook` (the Redshift Data API);
- `bigquery`: `BigQueryHook.insert_job`;
- `athena`: `AthenaHook`.

A family whose provider module is not imported yet is left alone (importing a provider costs the task seconds);
operators import their hooks when their DAG file is parsed, before the task runs. Tables are not parsed here:
the tracker parses the statement at ingest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from runlink.airflow.injection.base import Undo

log = logging.getLogger("runlink.airflow")

#: the hook families, each a module with `patch(recorder, undo, submitted)`
FAMILIES = ("dbapi", "redshift_data", "athena", "bigquery")


def install(raw: dict[str, str], settings: Any) -> Callable[[], None]:
    """Patch the SQL hooks loaded in this process to record into this attempt; never raises."""
    from runlink.airflow.sql.recorder import StatementRecorder
    from runlink.airflow.sql.submitted import Submitted

    undo = Undo()
    if not getattr(settings, "sql_statements", True):
        return undo
    recorder = StatementRecorder(raw, max_chars=int(getattr(settings, "sql_max_chars", 16384)),
                                 literals=not getattr(settings, "sql_strip_literals", False))
    submitted = Submitted(recorder)
    for family in FAMILIES:
        try:
            module = __import__(f"runlink.airflow.sql.{family}", fromlist=["patch"])
            module.patch(recorder, undo, submitted)
        except Exception:  # noqa: BLE001 - one family failing leaves the others and the task alone
            log.warning("runlink: could not track the SQL statements of %s hooks", family, exc_info=True)

    def uninstall() -> None:
        try:
            submitted.record_unfinished()
        finally:
            undo()

    return uninstall
