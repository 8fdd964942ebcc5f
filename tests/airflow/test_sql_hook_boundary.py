"""Issue 23 at the hook boundary: each family of SQL hooks records its statements with the query id and rows the
service answers, from the exact response shapes (the client object under the hook is faked, the hook is real):

- redshift_connector under RedshiftSQLHook: a real `redshift_connector.Cursor`; its session answers the
  CommandComplete tag (parsed by redshift_connector's own handler) and `pg_last_query_id()`;
- the Redshift Data API (`execute_statement`, `batch_execute_statement`, `describe_statement`);
- Snowflake's cursor (`sfqid`, `rowcount`) and Databricks SQL's (`query_id`) under DbApiHook;
- BigQuery: a real `google.cloud.bigquery.Client` whose HTTP connection answers the REST resources;
- Athena (`start_query_execution`, `get_query_execution`).

Each event is checked against the protocol schema; no password or token ever appears in one.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

# the hooks' modules are imported before a task runs (the operators import them when the DAG file is parsed);
# runlink patches only the families already imported
from airflow.providers.amazon.aws.hooks.athena import AthenaHook
from airflow.providers.amazon.aws.hooks.redshift_data import RedshiftDataHook
from airflow.providers.amazon.aws.hooks.redshift_sql import RedshiftSQLHook
from airflow.providers.common.sql.hooks.sql import DbApiHook
from airflow.providers.google.cloud.hooks.bigquery import BigQueryHook

from runlink import delivery
from runlink.airflow.settings import AirflowSettings
from runlink.airflow.sql import install
from runlink.protocol.events import validate_event

RAW = {"dag_id": "warehouse", "dag_run_id": "manual__1", "task_id": "load", "try_number": "1", "uid": "u1"}
PASSWORD = "s3cr3t-pa55"


class Collector:
    """A delivery client that keeps the events (the asynchronous client's emit() contract: never raises)."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def emit(self, event: dict[str, Any]) -> bool:
        self.events.append(dict(event))  # as the sender thread takes it (the event is built then)
        return True

    def statements(self) -> list[dict[str, Any]]:
        for event in self.events:
            validate_event(event)
            assert PASSWORD not in json.dumps(event)
        return [e["payload"] for e in self.events if e["type"] == "sql_statement"]


@pytest.fixture
def recorded() -> Iterator[Collector]:
    """The SQL hooks patched as inside a tracked task; put back afterwards (checked)."""
    collector = Collector()
    previous = delivery.set_client(collector)  # type: ignore[arg-type]
    uninstall = install(RAW, AirflowSettings(uid="u1"))
    try:
        yield collector
    finally:
        uninstall()
        delivery.set_client(previous)
    assert not getattr(DbApiHook._run_command, "_runlink_sql", False)


def _connection(conn_type: str, host: str, schema: str) -> Any:
    from airflow.models.connection import Connection

    return Connection(conn_id=f"wh_{conn_type}", conn_type=conn_type, host=host, schema=schema, login="etl",
                      password=PASSWORD, port=None)


# -- redshift_connector -----------------------------------------------------------------------------------


class RedshiftSession:
    """The server side of a redshift_connector session: each statement ends with the CommandComplete tag
    Redshift sends (handled by redshift_connector's own `handle_COMMAND_COMPLETE`), `pg_last_query_id()` answers
    the id of the session's last statement."""

    def __init__(self) -> None:
        import redshift_connector.core as core

        self._core = core
        # what redshift_connector's Connection.__init__ sets for a server of this protocol version
        self._commands_with_count = (b"INSERT", b"DELETE", b"UPDATE", b"MOVE", b"FETCH", b"COPY", b"SELECT")
        self._sock = object()
        self.in_transaction = False
        self.autocommit = True
        self.merge_socket_read = False
        self.last_query_id = 0
        self.answers = {
            "insert into sales select * from staging.sales": (b"INSERT 0 250\x00", [], 48211),
            "delete from sales where amount < 0": (b"DELETE 3\x00", [], 48212),
        }

    def cursor(self) -> Any:
        import redshift_connector

        return redshift_connector.Cursor(self, "format")

    def execute(self, cursor: Any, operation: str, vals: Any) -> None:
        cursor._row_count = -1
        cursor._cached_rows = deque()
        if operation == "begin transaction":  # redshift_connector opens one itself when autocommit is off
            self.in_transaction = True
            cursor.ps = {"row_desc": []}
            return
        if operation == "select pg_last_query_id()":
            cursor.ps = {"row_desc": [{"label": "pg_last_query_id"}]}
            cursor._cached_rows.append([self.last_query_id])
            cursor._row_count = 1
            return
        if operation not in self.answers:
            raise self._core.ProgrammingError({"S": "ERROR", "C": "42P01", "M": "relation \"nope\" does not exist"})
        tag, rows, query_id = self.answers[operation]
        cursor.ps = {"row_desc": []}
        self._core.Connection.handle_COMMAND_COMPLETE(self, tag, cursor)
        self.last_query_id = query_id

    def commit(self) -> None:
        self.in_transaction = False

    def close(self) -> None:
        pass


def test_redshift_connector(recorded: Collector) -> None:
    hook = RedshiftSQLHook(redshift_conn_id="wh_redshift",
                           connection=_connection("redshift", "rs1.abc.eu-west-1.redshift.amazonaws.com", "dev"))
    session = RedshiftSession()
    hook.get_conn = lambda: session  # type: ignore[method-assign]
    hook.run(["insert into sales select * from staging.sales", "delete from sales where amount < 0"])
    with pytest.raises(Exception, match="does not exist"):
        hook.run("select * from nope")
    insert, delete, failed = recorded.statements()
    assert (insert["query_id"], insert["rows"]) == ("48211", 250)
    assert (delete["query_id"], delete["rows"]) == ("48212", 3)
    assert insert["engine"] == "redshift" and insert["host"] == "rs1.abc.eu-west-1.redshift.amazonaws.com"
    assert insert["database"] == "dev" and insert["hook"] == "RedshiftSQLHook" and insert["success"] is True
    assert failed["success"] is False and "query_id" not in failed and "does not exist" in failed["error"]["message"]


# -- the Redshift Data API ----------------------------------------------------------------------------------


class RedshiftDataClient:
    """boto3's redshift-data client: the responses of execute_statement, batch_execute_statement and
    describe_statement (STARTED first, then the terminal answer)."""

    CREATED = datetime(2026, 12, 3, 10, 0, 0, tzinfo=timezone.utc)

    def __init__(self) -> None:
        self.described: dict[str, deque] = {}

    def execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        failing = "fail" in kwargs["Sql"]
        sid = "0e2f5a7b-1111-4c3d-9e8f-0a1b2c3d4e5f" if failing else "d9b6c0c9-0747-4bf4-b142-e8883122f766"
        done = {"Id": sid, "Status": "FINISHED", "QueryString": kwargs["Sql"], "RedshiftQueryId": 1208321,
                "RedshiftPid": 1073815670, "ResultRows": 1000, "ResultSize": 8192, "Duration": 1_234_567_890,
                "HasResultSet": False, "CreatedAt": self.CREATED, "UpdatedAt": self.CREATED, "Database": "dev",
                "DbUser": "etl", "ClusterIdentifier": "rs1"}
        if failing:
            done.update(Status="FAILED", ResultRows=-1, RedshiftQueryId=0, Duration=-1,
                        Error='ERROR: relation "fail_here" does not exist')
        self.described[sid] = deque([{**done, "Status": "STARTED"}, done])
        return {"Id": sid, "ClusterIdentifier": "rs1", "CreatedAt": self.CREATED, "Database": "dev",
                "DbUser": "etl", "ResponseMetadata": {"HTTPStatusCode": 200}}

    def batch_execute_statement(self, **kwargs: Any) -> dict[str, Any]:
        sid = "5b3e5c1e-2c4b-4b0a-8f4e-3f9a1e2d7c60"
        subs = [{"Id": f"{sid}:{n}", "QueryString": sql, "Status": "FINISHED", "RedshiftQueryId": 1208400 + n,
                 "ResultRows": rows, "Duration": 250_000_000 * n, "HasResultSet": False, "CreatedAt": self.CREATED,
                 "UpdatedAt": self.CREATED}
                for n, (sql, rows) in enumerate(zip(kwargs["Sqls"], (500, 20), strict=True), 1)]
        self.described[sid] = deque([{"Id": sid, "Status": "FINISHED", "SubStatements": subs, "ResultRows": -1,
                                      "Database": "dev", "ClusterIdentifier": "rs1", "CreatedAt": self.CREATED}])
        return {"Id": sid, "ClusterIdentifier": "rs1", "CreatedAt": self.CREATED, "Database": "dev"}

    def describe_statement(self, Id: str) -> dict[str, Any]:  # noqa: N803 - boto3's argument name
        answers = self.described[Id]
        return answers.popleft() if len(answers) > 1 else answers[0]


def test_redshift_data_api(recorded: Collector) -> None:
    hook = RedshiftDataHook(aws_conn_id=None, region_name="eu-west-1")
    hook.__dict__["conn"] = RedshiftDataClient()
    hook.execute_query(sql="insert into sales select * from staging.sales", database="dev",
                       cluster_identifier="rs1", poll_interval=0)
    hook.execute_query(sql=["create table t2 as select * from t1", "insert into t3 select * from t2"],
                       database="dev", cluster_identifier="rs1", poll_interval=0)
    with pytest.raises(Exception, match="FAILED"):
        hook.execute_query(sql="select * from fail_here", database="dev", cluster_identifier="rs1",
                           poll_interval=0)
    single, first, second, failed = recorded.statements()
    assert (single["query_id"], single["rows"], single["duration_ms"]) == ("1208321", 1000, 1234.568)
    assert single["session_id"] == "d9b6c0c9-0747-4bf4-b142-e8883122f766" and single["state"] == "finished"
    assert (single["engine"], single["host"], single["database"]) == ("redshift", "rs1", "dev")
    assert single["start_time"].startswith("2026-12-03T10:00:00")
    assert (first["query_id"], first["rows"], first["statement"]) == ("1208401", 500,
                                                                      "create table t2 as select * from t1")
    assert (second["query_id"], second["rows"], second["session_id"]) == (
        "1208402", 20, "5b3e5c1e-2c4b-4b0a-8f4e-3f9a1e2d7c60:2")
    assert failed["success"] is False and failed["state"] == "failed" and "rows" not in failed
    assert failed["error"]["message"] == 'ERROR: relation "fail_here" does not exist'


# -- Snowflake and Databricks SQL cursors -------------------------------------------------------------------


class DriverCursor:
    """The attributes Snowflake's and Databricks SQL's cursors set after execute() (their DB-API side)."""

    def __init__(self, answers: dict[str, tuple[int, str]], id_attribute: str) -> None:
        self.answers = answers
        self.id_attribute = id_attribute
        self.rowcount = -1
        self.description = None
        setattr(self, id_attribute, None)

    def execute(self, sql: str, params: Any = None) -> None:
        if sql not in self.answers:
            raise RuntimeError("002003 (42S02): SQL compilation error: Object 'NOPE' does not exist")
        self.rowcount, query_id = self.answers[sql]
        setattr(self, self.id_attribute, query_id)

    def fetchall(self) -> list:
        return []

    def close(self) -> None:
        pass


class DriverConnection:
    def __init__(self, cursor: DriverCursor) -> None:
        self._cursor = cursor
        self.autocommit = True

    def cursor(self) -> DriverCursor:
        return self._cursor

    def commit(self) -> None:
        pass

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("conn_type", "id_attribute", "query_id"), [
    ("snowflake", "sfqid", "01b8f2a4-0604-9c1e-0000-6b2102b5a1e6"),
    ("databricks", "query_id", "01efb1d2-3e4f-1a5b-9c6d-7e8f9a0b1c2d"),
])
def test_dbapi_cursor_ids(recorded: Collector, conn_type: str, id_attribute: str, query_id: str) -> None:
    class WarehouseHook(DbApiHook):
        conn_name_attr = "warehouse_conn_id"

    WarehouseHook.conn_type = conn_type
    cursor = DriverCursor({"MERGE INTO sales USING staging ON sales.id = staging.id "
                           "WHEN MATCHED THEN UPDATE SET amount = staging.amount": (42, query_id)}, id_attribute)
    hook = WarehouseHook(connection=_connection(conn_type, f"{conn_type}.example.com", "ANALYTICS"))
    hook.get_conn = lambda: DriverConnection(cursor)  # type: ignore[method-assign]
    hook.run("MERGE INTO sales USING staging ON sales.id = staging.id "
             "WHEN MATCHED THEN UPDATE SET amount = staging.amount")
    with pytest.raises(RuntimeError):
        hook.run("SELECT * FROM nope")
    merged, failed = recorded.statements()
    assert (merged["query_id"], merged["rows"], merged["engine"]) == (query_id, 42, conn_type)
    assert merged["host"] == f"{conn_type}.example.com" and merged["database"] == "ANALYTICS"
    assert failed["success"] is False and "SQL compilation error" in failed["error"]["message"]


# -- BigQuery ------------------------------------------------------------------------------------------------


class BigQueryHttp:
    """The BigQuery REST API as google-cloud-bigquery's connection sees it (jobs.insert, jobs.get,
    jobs.getQueryResults), with the job resources BigQuery returns."""

    def __init__(self) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}

    def api_request(self, method: str, path: str, query_params: Any = None, data: Any = None,
                    timeout: Any = None, **_: Any) -> dict[str, Any]:
        if method == "POST" and path.endswith("/jobs"):
            ref = {**data["jobReference"], "location": "EU"}
            self.jobs[ref["jobId"]] = data
            return {**data, "jobReference": ref, "id": f"proj-1:EU.{ref['jobId']}", "status": {"state": "RUNNING"}}
        job_id = path.rsplit("/", 1)[1]
        sql = self.jobs[job_id]["configuration"]["query"]["query"]
        ref = {"projectId": "proj-1", "jobId": job_id, "location": "EU"}
        failed = "SELEC " in sql
        if "/queries/" in path:
            if failed:
                return {"jobReference": ref, "jobComplete": True,
                        "errors": [{"reason": "invalidQuery", "message": "Syntax error"}]}
            return {"kind": "bigquery#getQueryResultsResponse", "jobReference": ref, "jobComplete": True,
                    "totalRows": "0", "schema": {"fields": []}}
        resource: dict[str, Any] = {
            "kind": "bigquery#job", "id": f"proj-1:EU.{job_id}", "jobReference": ref,
            "configuration": self.jobs[job_id]["configuration"], "status": {"state": "DONE"},
            "statistics": {"creationTime": "1764756000000", "startTime": "1764756000250",
                           "endTime": "1764756002750",
                           "query": {"totalBytesProcessed": "73400320", "statementType": "INSERT",
                                     "numDmlAffectedRows": "1250"}}}
        if sql.startswith("SELECT"):
            resource["statistics"]["query"] = {
                "totalBytesProcessed": "10485760", "statementType": "SELECT",
                "queryPlan": [{"name": "S00: Input", "recordsRead": "1250", "recordsWritten": "40"},
                              {"name": "S01: Output", "recordsRead": "40", "recordsWritten": "7"}]}
        if failed:
            error = {"reason": "invalidQuery", "location": "query",
                     "message": "Syntax error: Unexpected identifier \"SELEC\" at [1:1]"}
            resource["status"] = {"state": "DONE", "errorResult": error, "errors": [error]}
            del resource["statistics"]["query"]
        return resource


def test_bigquery_insert_job(recorded: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery


    monkeypatch.setenv("AIRFLOW_CONN_GOOGLE_CLOUD_DEFAULT", json.dumps({"conn_type": "google_cloud_platform",
                                                                       "extra": {"project": "proj-1"}}))
    client = bigquery.Client(project="proj-1", credentials=AnonymousCredentials())
    client._connection = BigQueryHttp()
    hook = BigQueryHook(gcp_conn_id="google_cloud_default")
    hook.get_client = lambda project_id=None, location=None: client  # type: ignore[method-assign]

    def query(sql: str) -> dict[str, Any]:
        return {"query": {"query": sql, "useLegacySql": False}}

    # the operator's way (nowait=True, then job.result()) and the hook's own wait
    job = hook.insert_job(configuration=query("INSERT INTO ds.sales SELECT * FROM ds.staging"),
                          job_id="airflow_load_1", project_id="proj-1", location="EU", nowait=True)
    job.result()
    hook.insert_job(configuration=query("SELECT region, SUM(amount) FROM ds.sales GROUP BY region"),
                    job_id="airflow_report_1", project_id="proj-1", location="EU")
    with pytest.raises(Exception, match="Syntax error"):
        hook.insert_job(configuration=query("SELEC 1"), job_id="airflow_bad_1", project_id="proj-1",
                        location="EU")
    insert, select, failed = recorded.statements()
    assert (insert["query_id"], insert["rows"], insert["duration_ms"]) == ("airflow_load_1", 1250, 2500.0)
    assert (insert["engine"], insert["host"], insert["database"]) == ("bigquery", "proj-1", "EU")
    assert insert["bytes_scanned"] == 73400320 and insert["state"] == "done"
    assert (select["query_id"], select["rows"]) == ("airflow_report_1", 7)
    assert failed["query_id"] == "airflow_bad_1" and failed["success"] is False
    assert failed["error"]["message"] == 'Syntax error: Unexpected identifier "SELEC" at [1:1]'


# -- Athena ---------------------------------------------------------------------------------------------------


class AthenaClient:
    """boto3's athena client: start_query_execution, then get_query_execution (RUNNING, then terminal)."""

    def __init__(self) -> None:
        self.answers: dict[str, deque] = {}

    def start_query_execution(self, **params: Any) -> dict[str, Any]:
        qid = "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111" if "nope" not in params["QueryString"] \
            else "b2c3d4e5-6789-01ab-cdef-EXAMPLE22222"
        submitted = datetime(2026, 12, 3, 9, 30, tzinfo=timezone.utc)
        base = {"QueryExecutionId": qid, "Query": params["QueryString"], "StatementType": "DML",
                "ResultConfiguration": params["ResultConfiguration"],
                "QueryExecutionContext": params["QueryExecutionContext"], "WorkGroup": params["WorkGroup"],
                "EngineVersion": {"SelectedEngineVersion": "AUTO", "EffectiveEngineVersion": "Athena engine version 3"}}
        running = {**base, "Status": {"State": "RUNNING", "SubmissionDateTime": submitted}}
        if "nope" in params["QueryString"]:
            done = {**base, "Status": {
                "State": "FAILED", "SubmissionDateTime": submitted, "CompletionDateTime": submitted,
                "StateChangeReason": "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.web.nope' does not exist",
                "AthenaError": {"ErrorCategory": 2, "ErrorType": 1301, "Retryable": False,
                                "ErrorMessage": "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.web.nope' does "
                                                "not exist"}},
                    "Statistics": {"EngineExecutionTimeInMillis": 210, "DataScannedInBytes": 0,
                                   "TotalExecutionTimeInMillis": 388, "QueryQueueTimeInMillis": 95}}
        else:
            done = {**base, "Status": {"State": "SUCCEEDED", "SubmissionDateTime": submitted,
                                       "CompletionDateTime": submitted},
                    "Statistics": {"EngineExecutionTimeInMillis": 4120, "DataScannedInBytes": 209715200,
                                   "TotalExecutionTimeInMillis": 4577, "QueryQueueTimeInMillis": 212,
                                   "ServicePreProcessingTimeInMillis": 120, "QueryPlanningTimeInMillis": 880,
                                   "ServiceProcessingTimeInMillis": 125, "ResultReuseInformation":
                                       {"ReusedPreviousResult": False}}}
        self.answers[qid] = deque([{"QueryExecution": running}, {"QueryExecution": done}])
        return {"QueryExecutionId": qid, "ResponseMetadata": {"HTTPStatusCode": 200}}

    def get_query_execution(self, QueryExecutionId: str) -> dict[str, Any]:  # noqa: N803 - boto3's name
        answers = self.answers[QueryExecutionId]
        return answers.popleft() if len(answers) > 1 else answers[0]


def test_athena(recorded: Collector) -> None:
    hook = AthenaHook(aws_conn_id=None, region_name="eu-west-1")
    client = AthenaClient()
    hook.get_conn = lambda: client  # type: ignore[method-assign]
    context = {"Database": "web", "Catalog": "AwsDataCatalog"}
    output = {"OutputLocation": "s3://results/athena/"}
    for sql in ("INSERT INTO web.daily SELECT * FROM web.raw_events", "SELECT * FROM nope"):
        qid = hook.run_query(sql, context, output, workgroup="primary")
        assert hook.check_query_status(qid) == "RUNNING"
        hook.check_query_status(qid)
        hook.get_state_change_reason(qid)  # the operator reads it again on failure: recorded once
    done, failed = recorded.statements()
    assert (done["query_id"], done["duration_ms"], done["bytes_scanned"]) == (
        "a1b2c3d4-5678-90ab-cdef-EXAMPLE11111", 4577.0, 209715200)
    assert (done["engine"], done["host"], done["database"]) == ("athena", "athena.eu-west-1.amazonaws.com", "web")
    assert done["success"] is True and done["state"] == "succeeded" and "rows" not in done
    assert failed["success"] is False and failed["query_id"] == "b2c3d4e5-6789-01ab-cdef-EXAMPLE22222"
    assert failed["error"]["message"].startswith("TABLE_NOT_FOUND")


def test_unfinished_submission_is_recorded_as_submitted() -> None:
    """A statement submitted without waiting (a deferred operator) is recorded when the task's patches go."""
    collector = Collector()
    previous = delivery.set_client(collector)  # type: ignore[arg-type]
    try:
        uninstall = install(RAW, AirflowSettings(uid="u1"))
        hook = AthenaHook(aws_conn_id=None, region_name="eu-west-1")
        client = AthenaClient()
        hook.get_conn = lambda: client  # type: ignore[method-assign]
        qid = hook.run_query("SELECT 1", {"Database": "web"}, {"OutputLocation": "s3://r/"})
        assert collector.statements() == []
        uninstall()
        hook.check_query_status(qid)  # after the task: nothing is recorded any more
    finally:
        delivery.set_client(previous)
    submitted, = collector.statements()
    assert (submitted["state"], submitted["query_id"], submitted["success"]) == ("submitted", qid, True)
    assert "duration_ms" not in submitted and not getattr(AthenaHook.run_query, "_runlink_sql", False)


def test_literals_stripped_and_switched_off() -> None:
    """`sql_strip_literals` replaces values by `?` before the text leaves the process; `sql_statements=False`
    patches nothing."""
    collector = Collector()
    previous = delivery.set_client(collector)  # type: ignore[arg-type]
    sql = "INSERT INTO users (email, age, score) VALUES ('alice@example.com', 42, -3.5e2) -- batch 7"

    class UsersHook(DbApiHook):
        conn_name_attr = "users_conn_id"
        conn_type = "postgres"

    cursor = DriverCursor({sql: (1, "")}, "query_id")
    hook = UsersHook(connection=_connection("postgres", "db.example.com", "app"))
    hook.get_conn = lambda: DriverConnection(cursor)  # type: ignore[method-assign]
    try:
        uninstall = install(RAW, AirflowSettings(uid="u1", sql_strip_literals=True))
        hook.run(sql)
        uninstall()
        uninstall = install(RAW, AirflowSettings(uid="u1", sql_statements=False))
        assert not getattr(DbApiHook._run_command, "_runlink_sql", False)
        hook.run(sql)
        uninstall()
    finally:
        delivery.set_client(previous)
    stripped, = collector.statements()
    assert stripped["statement"] == "INSERT INTO users (email, age, score) VALUES (?, ?, ?) -- batch ?"
    assert stripped["rows"] == 1 and "alice" not in json.dumps(collector.events)
