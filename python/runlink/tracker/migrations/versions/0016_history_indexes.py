"""indexes that keep list pages flat over years of history (issue 19)

Every list pages by keyset (tracker/keyset.py): each index below is the sort order of one listing, ending in the
id that breaks ties, so a page is an index range scan of `limit` rows wherever it starts.

- DAG runs of one DAG, newest first (the DAG page, /api/v1/dag-runs?dag_id=, the DAGs list's distinct dag_ids
  and last runs): dag_runs (dag_id, sort_key, id) replaces (dag_id, sort_key); of one DAG of one instance:
  dag_runs (dag_id, uid, sort_key, id);
- runs of one instance: dag_runs (uid, sort_key, id); of one state (the state filter; the distinct states of
  the filter drop-down, walked value by value): dag_runs (state, sort_key, id);
- Spark applications, newest first (start time, unknown last): spark_apps (coalesce(start_time, ''), id);
- datasets by name: datasets (substr(identity, 1, 200), id) (a prefix: a btree entry must stay small), and the
  last operation of a dataset: dataset_ops (dataset_pk, time);
- alerts, newest first, all or of one state: alerts (opened_at, id) and (state, opened_at, id) (replaces
  (state, opened_at)).

Revision ID: 0016_history_indexes
Revises: 0015_stage_distributions
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016_history_indexes"
down_revision = "0015_stage_distributions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_dag_runs_dag", table_name="dag_runs")
    op.create_index("ix_dag_runs_dag", "dag_runs", ["dag_id", "sort_key", "id"])
    op.create_index("ix_dag_runs_dag_uid", "dag_runs", ["dag_id", "uid", "sort_key", "id"])
    op.create_index("ix_dag_runs_uid", "dag_runs", ["uid", "sort_key", "id"])
    op.create_index("ix_dag_runs_state", "dag_runs", ["state", "sort_key", "id"])
    op.create_index("ix_spark_apps_start", "spark_apps", [sa.text("coalesce(start_time, '')"), "id"])
    op.create_index("ix_datasets_identity", "datasets", [sa.text("substr(identity, 1, 200)"), "id"])
    op.create_index("ix_dataset_ops_dataset_time", "dataset_ops", ["dataset_pk", "time"])
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.create_index("ix_alerts_state", "alerts", ["state", "opened_at", "id"])
    op.create_index("ix_alerts_opened", "alerts", ["opened_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_alerts_opened", table_name="alerts")
    op.drop_index("ix_alerts_state", table_name="alerts")
    op.create_index("ix_alerts_state", "alerts", ["state", "opened_at"])
    op.drop_index("ix_dataset_ops_dataset_time", table_name="dataset_ops")
    op.drop_index("ix_datasets_identity", table_name="datasets")
    op.drop_index("ix_spark_apps_start", table_name="spark_apps")
    op.drop_index("ix_dag_runs_state", table_name="dag_runs")
    op.drop_index("ix_dag_runs_uid", table_name="dag_runs")
    op.drop_index("ix_dag_runs_dag_uid", table_name="dag_runs")
    op.drop_index("ix_dag_runs_dag", table_name="dag_runs")
    op.create_index("ix_dag_runs_dag", "dag_runs", ["dag_id", "sort_key"])
