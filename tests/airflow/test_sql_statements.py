"""Issue 23 on a real PostgreSQL: SQLExecuteQueryOperator (postgres provider) under dag.test() -> every statement
under its attempt in a real tracker over HTTP, with rows, duration, tables, the session and the database error.

PostgreSQL at 127.0.0.1:5432 (trust auth, see support/postgres.py); a scratch database per module, dropped at
the end. Without a server the module skips and says why.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from airflow_runs import attempts, dag_module, wait_for_tree

from support.postgres import postgres_admin_url

pytest.importorskip("airflow.providers.postgres.hooks.postgres", reason="apache-airflow-providers-postgres")

SQL_DAGS = dag_module("runlink_sql_dags.py")
CONN_ID, CTAS, INSERT, SELECT = SQL_DAGS.CONN_ID, SQL_DAGS.CTAS, SQL_DAGS.INSERT, SQL_DAGS.SELECT


@pytest.fixture(scope="module")
def scratch_pg() -> Iterator[str]:
    """A database of this module's own on the test server, as an Airflow connection (AIRFLOW_CONN_*)."""
    import psycopg

    admin = postgres_admin_url()
    if admin is None:
        from support.postgres import _pg_probe

        pytest.skip(_pg_probe["reason"])
    name = f"runlink_sql_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    user = admin.split("://", 1)[1].split("@", 1)[0]
    env = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    os.environ[env] = f"postgres://{user}@127.0.0.1:5432/{name}"
    try:
        yield name
    finally:
        os.environ.pop(env, None)
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


def test_every_statement_under_its_attempt(airflow_tracker: Any, scratch_pg: str) -> None:
    dag_id = "runlink_sql_statements"
    run = SQL_DAGS.sql_dag.test()

    def ready(tree: dict) -> bool:
        load, broken = attempts(tree, "load"), attempts(tree, "broken")
        return (len(load) == 1 and len(load[0]["sql_statements"]) == 3 and len(broken) == 1
                and len(broken[0]["sql_statements"]) == 1)

    tree = wait_for_tree(airflow_tracker, dag_id, run.run_id, ready)
    load = attempts(tree, "load")[0]
    ctas, insert, select = load["sql_statements"]
    assert [s["seq"] for s in (ctas, insert, select)] == [0, 1, 2]
    assert ctas["statement"] == CTAS and insert["statement"] == INSERT
    assert "hunter2" not in select["statement"] and "password=***" in select["statement"]
    for statement in (ctas, insert, select):
        assert statement["success"] is True and statement["error"] is None
        assert statement["engine"] == "postgres" and statement["host"] == "127.0.0.1:5432"
        assert statement["database"] == scratch_pg and statement["hook"] == "PostgresHook"
        assert statement["session_id"].startswith("pid ") and statement["query_id"] is None
        assert statement["duration_ms"] > 0 and statement["start_time"]
    assert (ctas["rows"], insert["rows"], select["rows"]) == (1000, 250, 1)
    assert (ctas["tables_read"], ctas["tables_written"]) == ([], ["sales"])  # generate_series is no table
    assert (insert["tables_read"], insert["tables_written"]) == ([], ["sales"])
    assert (select["tables_read"], select["tables_written"]) == (["sales"], [])
    ops = [(d["operation"], d["table"], d["rows"]) for d in load["datasets"]]
    assert ops == [("write", "sales", 1000), ("write", "sales", 250), ("read", "sales", None)]
    assert len({d["dataset_pk"] for d in load["datasets"]}) == 1

    broken = attempts(tree, "broken")[0]
    assert broken["state"] == "failed"
    failed, = broken["sql_statements"]
    assert failed["success"] is False and failed["rows"] is None
    assert failed["error"]["type"] == "UndefinedTable"
    assert 'relation "missing_table" does not exist' in failed["error"]["message"]
    assert failed["tables_read"] == ["missing_table"] and broken["datasets"] == []

    opted_out = attempts(tree, "opted_out")
    assert all(not a["sql_statements"] for a in opted_out)


def test_hooks_are_put_back_after_the_task(airflow_tracker: Any, scratch_pg: str) -> None:
    """Outside a tracked task nothing is patched: the statement of a hook run here is not recorded."""
    from airflow.providers.common.sql.hooks.sql import DbApiHook
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    assert not getattr(DbApiHook._run_command, "_runlink_sql", False)
    assert PostgresHook(postgres_conn_id=CONN_ID).get_first("SELECT 41 + 1") == (42,)
