"""SQLAlchemy Core tables: the tracker's storage schema (Alembic migrations mirror this file).

Conventions: instants are stored as text in `context.format_instant` spelling (UTC, sortable);
JSON blobs are text written with orjson; no foreign keys (children may arrive before parents,
so rows point at ids that a later event or a relink fills in).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    func,
    literal_column,
)

metadata = MetaData()

ID = 36  # uuid text
INSTANT = 32
STAMP = 170  # instant + "|" + event id: last-writer-wins key that any arrival order agrees on

#: the numeric columns of the protocol's `stage_metrics`, stored one column each
STAGE_METRICS: tuple[str, ...] = (
    "executor_run_time_ms",
    "executor_cpu_time_ns",
    "executor_deserialize_time_ms",
    "executor_deserialize_cpu_time_ns",
    "result_size_bytes",
    "jvm_gc_time_ms",
    "result_serialization_time_ms",
    "input_bytes",
    "input_records",
    "output_bytes",
    "output_records",
    "shuffle_read_bytes",
    "shuffle_read_records",
    "shuffle_remote_bytes_read",
    "shuffle_local_bytes_read",
    "shuffle_fetch_wait_ms",
    "shuffle_write_bytes",
    "shuffle_write_records",
    "shuffle_write_time_ns",
    "memory_spilled_bytes",
    "disk_spilled_bytes",
    "peak_execution_memory_bytes",
)

tokens = Table(
    "tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("scope", String(16), nullable=False),
    Column("name", String(200)),
    Column("created_at", String(INSTANT), nullable=False),
    # token lifecycle (migration 0010): a revoked or expired token is refused; last use is kept to the minute
    Column("expires_at", String(INSTANT)),
    Column("revoked_at", String(INSTANT)),
    Column("last_used_at", String(INSTANT)),
)

#: every stored event: its id and where its audit copy is (the event itself, its type and time, and the batch's
#: arrival are in event_batches; migration 0017). Unique by `id`, enforced by ingest's dedupe under the write lock
#: and looked up through a 64-bit hash of the id (ingest.id_hash): ids are random, so an index on the 36-character
#: text dirtied ~one index page per event at commit; the 8-byte hash index is a third of the size.
events = Table(
    "events",
    metadata,
    Column("id", String(128), nullable=False),
    Column("id_hash", BigInteger, nullable=False),
    Column("raw", Text),  # the event's JSON in databases made before 0005; since then in its batch
    Column("batch_id", String(32)),  # event_batches.id: the audit copy of the event is at `position` there
    Column("position", Integer),
    Index("ix_events_id_hash", "id_hash"),
)

#: each accepted batch as stored (after masking), zstd-compressed JSON: the audit copy of its events
event_batches = Table(
    "event_batches",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("received_at", String(INSTANT), nullable=False),
    Column("body", LargeBinary, nullable=False),
)

#: dag_run.* and task_attempt.* events, kept by context so runs and attempts can be recomputed
state_events = Table(
    "state_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("context_id", String(ID), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("time", String(INSTANT), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Index("ix_state_events_context", "context_id"),
)

instances = Table(
    "instances",
    metadata,
    Column("uid", String(250), primary_key=True),
    Column("first_seen", String(INSTANT)),
)

dags = Table(
    "dags",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("uid", String(250)),
    Column("dag_id", String(250), nullable=False),
    Column("description", Text),
    Column("schedule", Text),
    Column("owners", Text),
    Column("tags", Text),
    Column("fileloc", Text),
    Column("is_paused", Boolean),
    Column("next_run_date", String(INSTANT)),
    Column("tasks", Text),
    #: False when the syncer saw the DAG disappear from Airflow (stale or deleted); None = not known
    Column("is_active", Boolean),
    Column("stamp", String(STAMP)),
    Index("ix_dags_dag_id", "dag_id"),
)

contexts = Table(
    "contexts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("uid", String(250)),
    Column("dag_id", String(250)),
    Column("dag_run_id", String(250)),
    Column("logical_date", String(INSTANT)),
    Column("logical_day", String(10)),
    Column("date_only", Boolean, nullable=False),
    Column("task_id", String(250)),
    Column("try_number", Integer),
    Column("map_index", Integer, nullable=False),
    Column("synthetic", Boolean, nullable=False),
    Column("run_pk", String(ID)),
    Column("attempt_pk", String(ID)),
    Column("ambiguous", Boolean, nullable=False),
    Index("ix_contexts_dag_day", "dag_id", "logical_day"),
    Index("ix_contexts_dag_run", "dag_id", "dag_run_id"),
    Index("ix_contexts_dag_uid", "dag_id", "uid"),
    Index("ix_contexts_run_pk", "run_pk"),
    Index("ix_contexts_attempt_pk", "attempt_pk"),
)

dag_runs = Table(
    "dag_runs",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("uid", String(250)),
    Column("dag_id", String(250), nullable=False),
    Column("canonical_key", String(300), nullable=False),
    Column("run_id", String(250)),
    Column("logical_date", String(INSTANT)),
    Column("logical_day", String(10)),
    Column("placeholder", Boolean, nullable=False),
    Column("ambiguous", Boolean, nullable=False),
    Column("synthetic", Boolean, nullable=False),
    Column("state", String(32)),
    Column("start_date", String(INSTANT)),
    Column("end_date", String(INSTANT)),
    Column("run_type", String(64)),
    Column("conf", Text),
    Column("data_interval_start", String(INSTANT)),
    Column("data_interval_end", String(INSTANT)),
    Column("triggered_by", String(64)),
    Column("note", Text),
    Column("sort_key", String(INSTANT), nullable=False),
    Index("ix_dag_runs_sort", "sort_key", "id"),
    Index("ix_dag_runs_dag", "dag_id", "sort_key", "id"),  # 0016: the keyset orders of tracker/keyset.py
    Index("ix_dag_runs_dag_uid", "dag_id", "uid", "sort_key", "id"),
    Index("ix_dag_runs_uid", "uid", "sort_key", "id"),
    Index("ix_dag_runs_state", "state", "sort_key", "id"),
)

task_attempts = Table(
    "task_attempts",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("run_pk", String(ID), nullable=False),
    Column("task_id", String(250), nullable=False),
    Column("map_index", Integer, nullable=False),
    Column("try_number", Integer),
    Column("placeholder", Boolean, nullable=False),
    Column("state", String(32)),
    Column("start_date", String(INSTANT)),
    Column("end_date", String(INSTANT)),
    Column("duration_s", Float),
    Column("operator", String(500)),
    Column("error", Text),
    Column("params", Text),
    Column("hostname", String(255)),
    Column("pid", Integer),
    Column("source_code", Text),
    Column("return_value", Text),
    Column("log_url", Text),
    Column("pool", String(256)),
    Column("queue", String(256)),
    Column("executor", String(256)),
    Column("max_tries", Integer),
    Index("ix_task_attempts_run", "run_pk"),
)

spark_apps = Table(
    "spark_apps",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("app_id", String(255), nullable=False),
    Column("attempt_id", String(64)),
    Column("context_id", String(ID)),
    Column("context_rank", String(64)),
    Column("name", Text),
    Column("spark_version", String(64)),
    Column("scala_version", String(64)),
    Column("master", Text),
    Column("deploy_mode", String(64)),
    Column("user", String(255)),
    Column("start_time", String(INSTANT)),
    Column("ui_url", Text),
    Column("conf", Text),
    Column("start_stamp", String(STAMP)),
    Column("end_time", String(INSTANT)),
    Column("exit_code", Integer),
    Column("state", String(32)),
    Column("end_stamp", String(STAMP)),
    Index("ix_spark_apps_context", "context_id"),
)
Index("ix_spark_apps_start", func.coalesce(spark_apps.c.start_time, literal_column("''")), spark_apps.c.id)

spark_jobs = Table(
    "spark_jobs",
    metadata,
    Column("spark_app_pk", String(ID), primary_key=True),
    Column("job_id", Integer, primary_key=True, autoincrement=False),
    Column("stage_ids", Text),
    Column("job_group", Text),
    Column("description", Text),
    Column("sql_execution_id", BigInteger),
    Column("submission_time", String(INSTANT)),
    Column("callsite", Text),
    Column("start_stamp", String(STAMP)),
    Column("completion_time", String(INSTANT)),
    Column("result", String(16)),
    Column("failure_reason", Text),
    Column("end_stamp", String(STAMP)),
    #: on a shared application, the context of the task that ran the job (the event's work_context); None: the
    #: application's own (migration 0011)
    Column("context_id", String(ID)),
    sqlite_with_rowid=False,  # one b-tree (the key) instead of a rowid table plus a key index
)

spark_stages = Table(
    "spark_stages",
    metadata,
    Column("spark_app_pk", String(ID), primary_key=True),
    Column("stage_id", Integer, primary_key=True, autoincrement=False),
    Column("attempt_id", Integer, primary_key=True, autoincrement=False),
    Column("name", Text),
    Column("num_tasks", Integer),
    Column("failed_tasks", Integer),
    Column("killed_tasks", Integer),
    Column("submission_time", String(INSTANT)),
    Column("completion_time", String(INSTANT)),
    Column("status", String(16), nullable=False),
    Column("failure_reason", Text),
    Column("job_ids", Text),
    *(Column(name, BigInteger) for name in STAGE_METRICS),
    Column("stamp", String(STAMP), nullable=False),
    Column("context_id", String(ID)),  # as spark_jobs.context_id: its job's task, on a shared application
    #: the user's code line that made the stage, and its task distribution (JSON: quantiles per metric, skew, the
    #: slowest task, failed-task reasons) with its duration skew (max / median) apart, for rules (migration 0015)
    Column("callsite", Text),
    Column("distribution", Text),
    Column("task_skew", Float),
    sqlite_with_rowid=False,  # clustered by (app, stage, attempt): a run tree reads one app's stages in order
)

#: the contexts of the tasks whose work ran on a shared application (migration 0011): a task's tree finds the
#: application here, the application's page lists its users
spark_app_contexts = Table(
    "spark_app_contexts",
    metadata,
    Column("spark_app_pk", String(ID), primary_key=True),
    Column("context_id", String(ID), primary_key=True),
    Index("ix_spark_app_contexts_context", "context_id"),
)

spark_executors = Table(
    "spark_executors",
    metadata,
    Column("spark_app_pk", String(ID), primary_key=True),
    Column("executor_id", String(255), primary_key=True),
    Column("host", String(255)),
    Column("cores", Integer),
    Column("added_time", String(INSTANT)),
    Column("removed_time", String(INSTANT)),
    Column("reason", Text),
    Column("add_stamp", String(STAMP)),
    Column("remove_stamp", String(STAMP)),
)

sql_queries = Table(
    "sql_queries",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("spark_app_pk", String(ID), nullable=False),
    Column("context_id", String(ID)),
    Column("execution_id", BigInteger),
    Column("action", String(255)),
    Column("duration_ms", Float),
    Column("success", Boolean, nullable=False),
    Column("error", Text),
    Column("plan_summary", Text),
    Column("plan_truncated", Boolean),
    Column("callsite", Text),
    Column("listener", String(32)),
    Column("time", String(INSTANT)),
    Index("ix_sql_queries_app", "spark_app_pk"),
)

#: one row per Structured Streaming query run, under its Spark application (and, through the context, its attempt).
#: Start, figures (cumulative on the wire: the latest report holds the totals), rates (from the latest interval that
#: had batches) and end each merge by their own stamp, so any arrival order gives the same row
streaming_queries = Table(
    "streaming_queries",
    metadata,
    Column("spark_app_pk", String(ID), primary_key=True),
    Column("run_id", String(64), primary_key=True),
    Column("query_id", String(64), nullable=False),
    Column("context_id", String(ID)),
    Column("name", String(255)),
    Column("state", String(16), nullable=False),
    Column("start_time", String(INSTANT)),
    Column("end_time", String(INSTANT)),
    Column("total_batches", BigInteger),
    Column("total_input_rows", BigInteger),
    Column("total_batch_ms", BigInteger),
    Column("max_batch_ms", BigInteger),
    Column("latest_batch_id", BigInteger),
    Column("input_rows_per_s", Float),
    Column("processed_rows_per_s", Float),
    Column("watermark", String(64)),
    Column("state_rows", BigInteger),
    Column("sources", Text),
    Column("sink", Text),
    Column("error", Text),
    Column("start_stamp", String(STAMP)),
    Column("progress_stamp", String(STAMP)),
    Column("rates_stamp", String(STAMP)),
    Column("end_stamp", String(STAMP)),
    Index("ix_streaming_queries_context", "context_id"),
)

#: one row per statement an Airflow SQL hook ran inside a task attempt (runlink.airflow.sql); its tables, parsed
#: at ingest (tracker/sql_tables.py), are also dataset_ops of the attempt (id = event id + ":i<n>"/":o<n>")
sql_statements = Table(
    "sql_statements",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("context_id", String(ID)),
    Column("seq", Integer),
    Column("engine", String(64)),
    Column("host", Text),
    Column("database", Text),
    Column("hook", String(255)),
    Column("query_id", String(255)),
    Column("session_id", String(255)),
    Column("statement", Text, nullable=False),
    Column("statement_truncated", Boolean),
    Column("start_time", String(INSTANT)),
    Column("duration_ms", Float),
    Column("rows", BigInteger),
    Column("bytes_scanned", BigInteger),
    Column("state", String(32)),
    Column("success", Boolean, nullable=False),
    Column("error", Text),
    Column("tables_read", Text),
    Column("tables_written", Text),
    Column("time", String(INSTANT)),
    Index("ix_sql_statements_context", "context_id"),
)

datasets = Table(
    "datasets",
    metadata,
    Column("id", String(ID), primary_key=True),
    Column("identity", Text, nullable=False),
    Column("uri", Text),
    Column("path", Text),
    Column("table_name", Text),
    Column("format", String(100)),
)

dataset_ops = Table(
    "dataset_ops",
    metadata,
    Column("id", String(160), primary_key=True),
    Column("dataset_pk", String(ID), nullable=False),
    Column("context_id", String(ID)),
    Column("spark_app_pk", String(ID)),
    Column("sql_query_pk", String(128)),
    Column("operation", String(16), nullable=False),
    Column("name", Text),
    Column("mode", String(100)),
    Column("format", String(100)),
    Column("rows", BigInteger),
    Column("bytes", BigInteger),
    Column("files", BigInteger),
    Column("schema", Text),
    Column("schema_truncated", Boolean),
    Column("column_stats", Text),
    Column("time", String(INSTANT)),
    # runlink.dataset_op / log_dataset_op (migration 0013): outcome, a preview when asked for, the enclosing span
    Column("span_id", String(64)),
    Column("success", Boolean),
    Column("error", Text),
    Column("preview", Text),
    Index("ix_dataset_ops_context", "context_id"),
    Index("ix_dataset_ops_query", "sql_query_pk"),
    Index("ix_dataset_ops_dataset", "dataset_pk"),
    Index("ix_dataset_ops_dataset_time", "dataset_pk", "time"),
)
Index("ix_datasets_identity", func.substr(datasets.c.identity, 1, 200), datasets.c.id)

#: no index on `id` (the event id): events' dedupe already makes it unique, and a random-key index cost an
#: index page write per metric
metrics = Table(
    "metrics",
    metadata,
    Column("id", String(128), nullable=False),
    Column("context_id", String(ID)),
    Column("spark_app_pk", String(ID)),
    Column("key", String(1000), nullable=False),
    Column("value_num", Float),
    Column("value_text", Text),
    Column("value_type", String(8), nullable=False),
    Column("origin", String(64)),
    Column("time", String(INSTANT)),
    Column("span_id", String(64)),  # the tracked function it was logged in (migration 0013)
    Index("ix_metrics_context", "context_id"),
)

#: tracked Python functions and blocks (runlink.track / runlink.span): one row per call, a tree by parent_id
#: under the context (task attempt, or a script's run of its own); `id` is the span id the SDK made
spans = Table(
    "spans",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("event_id", String(128), nullable=False),
    Column("context_id", String(ID)),
    Column("parent_id", String(64)),
    Column("name", String(1000), nullable=False),
    Column("state", String(16), nullable=False),
    Column("start_time", String(INSTANT)),
    Column("end_time", String(INSTANT)),
    Column("duration_ms", Float),
    Column("error", Text),
    Column("args", Text),
    Column("result", Text),
    Index("ix_spans_context", "context_id"),
)

log_chunks = Table(
    "log_chunks",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("context_id", String(ID)),
    Column("spark_app_pk", String(ID)),
    Column("position", String(8)),
    Column("seq", BigInteger),
    Column("text", Text, nullable=False),
    Column("truncated", Boolean),
    Column("time", String(INSTANT)),
    Index("ix_log_chunks_context", "context_id"),
)

agent_health = Table(
    "agent_health",
    metadata,
    Column("id", String(128), primary_key=True),
    Column("agent", String(64)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("version", String(64)),
    Column("context_id", String(ID)),
    Column("spark_app_pk", String(ID)),
    Column("events_sent", BigInteger),
    Column("events_dropped", BigInteger),
    Column("events_spooled", BigInteger),
    Column("events_replayed", BigInteger),
    Column("queue_size", BigInteger),
    Column("send_errors", BigInteger),
    Column("reason", Text),
    Column("time", String(INSTANT)),
)
