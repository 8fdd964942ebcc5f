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

from support.postgres import create_database, drop_database
from support.waiting import wait_for

pytest.importorskip("airflow.providers.postgres.hooks.postgres", reason="apache-airflow-providers-postgres")

SQL_DAGS = dag_module("runlink_sql_dags.py")
CONN_ID, CTAS, INSERT, SELECT = SQL_DAGS.CONN_ID, SQL_DAGS.CTAS, SQL_DAGS.INSERT, SQL_DAGS.SELECT


@pytest.fixture(scope="module")
def scratch_pg() -> Iterator[str]:
    """A database of this module's own on the test server, as an Airflow connection (AIRFLOW_CONN_*); its name."""
    url = create_database()
    env = f"AIRFLOW_CONN_{CONN_ID.upper()}"
    os.environ[env] = "postgres://" + url.split("://", 1)[1]
    try:
        yield url.rsplit("/", 1)[1]
    finally:
        os.environ.pop(env, None)
        drop_database(url)


@pytest.fixture(scope="module")
def sql_tree(airflow_tracker: Any, scratch_pg: str) -> dict:
    """The DAG run once under dag.test(); its tree as the tracker serves it, every statement stored."""
    run = SQL_DAGS.sql_dag.test()

    def ready(tree: dict) -> bool:
        load, broken = attempts(tree, "load"), attempts(tree, "broken")
        return (len(load) == 1 and len(load[0]["sql_statements"]) == 3 and len(broken) == 1
                and len(broken[0]["sql_statements"]) == 1)

    return wait_for_tree(airflow_tracker, "runlink_sql_statements", run.run_id, ready)


def test_every_statement_under_its_attempt(sql_tree: dict, scratch_pg: str) -> None:
    tree = sql_tree
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


def test_attempt_page_cli_and_alert(airflow_tracker: Any, sql_tree: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """The attempt page lists the statements, `runlink runs show` prints them, a rule on a statement's rows
    fires with the statement named."""
    import re

    import requests

    from support.cli import runlink_cli

    load = attempts(sql_tree, "load")[0]
    session = requests.Session()
    csrf = re.search(r'name="csrf" value="([^"]+)"', session.get(airflow_tracker.url + "/ui/login", timeout=30).text)
    session.post(airflow_tracker.url + "/ui/login", timeout=30,
                 data={"token": airflow_tracker.token, "csrf": csrf.group(1), "next": "/ui/dags"})
    page = session.get(f"{airflow_tracker.url}/ui/task-attempts/{load['id']}", timeout=30)
    assert page.status_code == 200 and 'id="sql-statements"' in page.text
    table = page.text.split('id="sql-statements"', 1)[1].split("</table>", 1)[0]
    assert table.count("<tr class=") == 3 and "write: sales" in table and "read: sales" in table
    assert "1,000" in table or "1000" in table

    shown = runlink_cli(airflow_tracker, "runs", "show", "runlink_sql_statements", sql_tree["run_id"]).stdout
    assert "sql postgres ok" in shown and re.search(r"rows=1[ ,.]?000\b", shown), shown
    assert "sql postgres FAILED" in shown and 'relation "missing_table" does not exist' in shown, shown
    assert "out: sales" in shown and "in: sales" in shown, shown

    rule = requests.post(airflow_tracker.url + "/api/v1/alert-rules", headers=airflow_tracker.headers(), timeout=30,
                         json={"name": "sales load too big", "kind": "sql_statement",
                               "dag_id": "runlink_sql_statements", "task_id": "load",
                               "params": {"statement": "sales", "max_rows": 500}})
    assert rule.status_code in (200, 201), rule.text

    def fired() -> list:
        return [a for a in airflow_tracker.get_json("/api/v1/alerts")["items"]
                if a["rule_id"] == rule.json()["id"] and a["state"] == "open"]

    alert, = wait_for(fired, "the sql_statement alert", 60, ready=bool)
    assert "1000 rows > max 500" in alert["title"] and "CREATE TABLE sales" in alert["message"]


def test_sql_table_and_spark_jdbc_read_are_one_dataset(airflow_tracker: Any, sql_tree: dict) -> None:
    """A Spark query reading the table over JDBC (as the JVM listener reports it: `table` = dbtable) lands on the
    dataset the SQL statement wrote."""
    from runlink.protocol.events import make_event

    load = attempts(sql_tree, "load")[0]
    written = next(d for d in load["datasets"] if d["operation"] == "write")
    context = {"dag_id": "runlink_spark_reader", "dag_run_id": "manual__1", "task_id": "read_sales",
               "try_number": "1"}
    spark = {"app_id": f"local-{uuid.uuid4().hex[:10]}"}
    event = make_event("sql_query", {"execution_id": 0, "action": "collect", "success": True, "duration_ms": 12.0,
                                     "inputs": [{"table": "sales", "format": "jdbc", "operation": "read"}]},
                       context=context, spark=spark, agent="jvm")
    assert airflow_tracker.post_events([event]).status_code == 202
    view = wait_for(lambda: airflow_tracker.get_json(f"/api/v1/views/datasets/{written['dataset_pk']}"),
                    "the dataset with the Spark read", 60,
                    ready=lambda d: any(o["task_id"] == "read_sales" for o in d["operations"]))
    by_task = {(o["task_id"], o["operation"], o["format"]) for o in view["operations"]}
    assert {("load", "write", "postgres"), ("load", "read", "postgres"), ("read_sales", "read", "jdbc")} <= by_task


def test_statement_that_does_not_parse_is_kept_without_tables(airflow_tracker: Any, sql_tree: dict) -> None:
    """The tracker's parser failing on a statement stores it whole, without tables (and no dataset)."""
    from runlink.protocol.events import make_event

    context = {"dag_id": "runlink_sql_statements", "dag_run_id": sql_tree["run_id"], "task_id": "parse_check",
               "try_number": "1"}
    event = make_event("sql_statement", {"statement": "SELEC * FRM ((( WHERE", "success": True, "rows": 0,
                                         "engine": "postgres", "seq": 0}, context=context, agent="airflow")
    assert airflow_tracker.post_events([event]).status_code == 202
    tree = wait_for_tree(airflow_tracker, "runlink_sql_statements", sql_tree["run_id"],
                         lambda t: bool(attempts(t, "parse_check")) and bool(attempts(t, "parse_check")[0]
                                                                              ["sql_statements"]))
    attempt = attempts(tree, "parse_check")[0]
    kept, = attempt["sql_statements"]
    assert kept["statement"] == "SELEC * FRM ((( WHERE" and kept["success"] is True
    assert kept["tables_read"] is None and kept["tables_written"] is None and attempt["datasets"] == []
