"""SQL operator DAGs for tests/airflow/test_sql_statements.py (issue 23): a PostgreSQL connection named
`runlink_sql_pg`, which the test sets (AIRFLOW_CONN_RUNLINK_SQL_PG) to a scratch database of its own."""

from __future__ import annotations

from datetime import datetime

try:
    from airflow.sdk import DAG
except ImportError:  # Airflow 2.11
    from airflow import DAG

try:
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
except ImportError:
    SQLExecuteQueryOperator = None

CONN_ID = "runlink_sql_pg"
CTAS = "CREATE TABLE sales AS SELECT g AS id, g * 2 AS amount FROM generate_series(1, 1000) AS g"
INSERT = "INSERT INTO sales (id, amount) SELECT g, g * 2 FROM generate_series(1001, 1250) AS g"
SELECT = "SELECT count(*) AS n, 'password=hunter2' AS note FROM sales WHERE amount > 100"
FAILING = "SELECT id FROM missing_table"

if SQLExecuteQueryOperator is not None:
    with DAG("runlink_sql_statements", start_date=datetime(2026, 1, 1), schedule=None, catchup=False) as sql_dag:
        load = SQLExecuteQueryOperator(task_id="load", conn_id=CONN_ID, sql=[CTAS, INSERT, SELECT])
        broken = SQLExecuteQueryOperator(task_id="broken", conn_id=CONN_ID, sql=FAILING)
        opted_out = SQLExecuteQueryOperator(task_id="opted_out", conn_id=CONN_ID, sql="SELECT 1",
                                            params={"runlink_tracking": False})
        load >> [broken, opted_out]
