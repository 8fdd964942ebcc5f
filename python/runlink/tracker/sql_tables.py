"""The tables a SQL statement reads and writes, from sqlglot (pure Python, at ingest: the task process stays light).

Names are the statement's own, unquoted and dot-joined (`catalog.schema.table` as far as written), which is
the convention Spark's plan inspection uses for the datasets it reports by table (`TableIdentifier
.unquotedString`, a JDBC source's `dbtable`): a table written by SQL and read by Spark under the same name is
one dataset. A statement sqlglot cannot parse gives None (stored without tables), never an error.
"""

from __future__ import annotations

import functools
import logging

log = logging.getLogger("runlink.tracker")

#: the engine (an Airflow connection type) -> sqlglot's dialect; others parse with the generic dialect
DIALECTS = {
    "postgres": "postgres", "postgresql": "postgres", "redshift": "redshift", "snowflake": "snowflake",
    "bigquery": "bigquery", "gcpbigquery": "bigquery", "google_cloud_platform": "bigquery", "athena": "athena",
    "databricks": "databricks", "trino": "trino", "presto": "presto", "mysql": "mysql", "mssql": "tsql",
    "oracle": "oracle", "sqlite": "sqlite", "hive_cli": "hive", "hiveserver2": "hive", "spark": "spark",
    "duckdb": "duckdb", "clickhouse": "clickhouse", "teradata": "teradata", "exasol": "exasol",
    "vertica": "postgres", "teradata_sql": "teradata",
}
#: longer statements are stored without tables (parsing time grows with the text; ingest stays bounded)
MAX_PARSED_CHARS = 200_000


def tables(statement: str, engine: str | None) -> tuple[list[str], list[str]] | None:
    """(tables read, tables written) in order of appearance, or None when the statement does not parse."""
    if not statement or len(statement) > MAX_PARSED_CHARS:
        return None
    return _tables(statement, DIALECTS.get((engine or "").lower()))


@functools.lru_cache(maxsize=2048)
def _tables(statement: str, dialect: str | None) -> tuple[list[str], list[str]] | None:
    try:
        import sqlglot
        from sqlglot import exp

        parsed = sqlglot.parse(statement, dialect=dialect)
    except Exception:  # noqa: BLE001 - sqlglot's ParseError, TokenError, and anything else: no tables
        return None
    read: list[str] = []
    written: list[str] = []
    try:
        for tree in parsed:
            if tree is not None:
                _walk(tree, exp, read, written)
    except Exception:  # noqa: BLE001
        log.debug("runlink: sqlglot walk failed", exc_info=True)
        return None
    return read, written


def _name(table: object) -> str | None:
    from sqlglot import exp

    if not isinstance(table, exp.Table) or not isinstance(table.this, exp.Identifier):
        return None  # a table function (generate_series, unnest) or a placeholder
    parts = [table.catalog, table.db, table.name]
    return ".".join(p for p in parts if p) or None


def _targets(tree: object, exp: object) -> list[object]:
    """The table nodes a statement writes (the first table of its target; every table a TRUNCATE names)."""
    if isinstance(tree, exp.TruncateTable):
        return list(tree.expressions)
    if not isinstance(tree, (exp.Insert, exp.Create, exp.Update, exp.Delete, exp.Merge, exp.Copy, exp.Drop,
                             exp.Alter)):
        return []
    target = tree.this if tree.this is not None else tree.find(exp.Table)
    if isinstance(target, exp.Table):
        return [target]
    found = target.find(exp.Table) if target is not None else None
    return [found] if found is not None else []


def _walk(tree: object, exp: object, read: list[str], written: list[str]) -> None:
    targets = set()
    for table in _targets(tree, exp):
        name = _name(table)
        if name:
            targets.add(id(table))
            if name not in written:
                written.append(name)
    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    for table in tree.find_all(exp.Table):
        if id(table) in targets:
            continue
        name = _name(table)
        if name and not (name in ctes and not table.db) and name not in read:
            read.append(name)
