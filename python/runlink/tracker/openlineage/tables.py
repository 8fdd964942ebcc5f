"""The tracker's OpenLineage tables: the run map, the events waiting for their parent, the merged datasets.

Kept apart from the models of runlink's own events: migration 0004/0009 creates them, the translator and the
pending listing read and write them.
"""

from sqlalchemy import Column, Index, MetaData, String, Table, Text

_meta = MetaData()
#: every OpenLineage run seen: what it resolved to (Airflow context, Spark app) and, for child runs (a Spark
#: application, a dbt or openlineage-python job under an Airflow task), its state, times and error
ol_runs = Table(
    "openlineage_runs", _meta,
    Column("run_id", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("job_namespace", String(1000)),
    Column("job_name", String(1000)),
    Column("parent_run_id", String(64)),
    Column("context", Text),
    Column("spark_app_id", String(255)),
    Column("spark_attempt_id", String(64)),
    Column("started_at", String(40)),
    Column("updated_at", String(40), nullable=False),
    Column("root_run_id", String(64)),
    Column("parent_job_namespace", String(1000)),
    Column("parent_job_name", String(1000)),
    Column("context_id", String(36)),  # contexts.id the run is shown under (its parent attempt or DAG run)
    Column("state", String(16)),
    Column("state_stamp", String(80)),  # "terminal?|instant|eventType": the highest wins, in any order
    Column("ended_at", String(40)),
    Column("error_message", Text),
    Column("error_stack", Text),
    Column("error_stamp", String(80)),
    Index("ix_openlineage_runs_parent", "parent_run_id"),
    Index("ix_openlineage_runs_context", "context_id"),
)
#: events waiting for their parent run; `status` pending -> unlinked after the TTL (still linked if it arrives)
ol_pending = Table(
    "openlineage_pending", _meta,
    Column("id", String(128), primary_key=True),
    Column("waiting_on", String(64), nullable=False),
    Column("raw", Text, nullable=False),
    Column("received_at", String(40), nullable=False),
    Column("run_id", String(64)),
    Column("event_type", String(16)),
    Column("event_time", String(40)),
    Column("job_namespace", String(1000)),
    Column("job_name", String(1000)),
    Column("parent_job_namespace", String(1000)),
    Column("parent_job_name", String(1000)),
    Column("root_run_id", String(64)),
    Column("root_job_name", String(1000)),
    Column("status", String(16), nullable=False, server_default="pending"),
    Column("unlinked_at", String(40)),
    Index("ix_openlineage_pending_waiting", "waiting_on"),
    Index("ix_openlineage_pending_status", "status", "received_at"),
)
#: whether any event waits at all: asked by ingest in each batch's write transaction (ingest.store) for the waiting
#: linker; in key order, an index scan (a keyed write runs with sequential scans off)
ANY_PENDING = "SELECT 1 FROM openlineage_pending ORDER BY id LIMIT 1"
#: one dataset per (OpenLineage run, dataset, direction): every event's view of it (`facts`, by stamp) and their
#: merge (non-null wins, the later event wins), which is what the dataset_ops row `op_id` holds
ol_datasets = Table(
    "openlineage_datasets", _meta,
    Column("op_id", String(128), primary_key=True),
    Column("run_id", String(64), nullable=False),
    Column("direction", String(8), nullable=False),
    Column("facts", Text, nullable=False),
    Column("merged", Text, nullable=False),
    Index("ix_openlineage_datasets_run", "run_id"),
)
