"""contexts: indexes for relinking a new context's neighbourhood (same dag_id and day, same dag_run_id, the
dag_id's uids) instead of the dag_id's whole history; they also serve every lookup by dag_id

Revision ID: 0007_context_neighbourhood
Revises: 0006_dag_is_active
"""

from __future__ import annotations

from alembic import op

revision = "0007_context_neighbourhood"
down_revision = "0006_dag_is_active"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_contexts_dag_day", "contexts", ["dag_id", "logical_day"])
    op.create_index("ix_contexts_dag_run", "contexts", ["dag_id", "dag_run_id"])
    op.create_index("ix_contexts_dag_uid", "contexts", ["dag_id", "uid"])
    op.drop_index("ix_contexts_dag_id", table_name="contexts")


def downgrade() -> None:
    op.create_index("ix_contexts_dag_id", "contexts", ["dag_id"])
    op.drop_index("ix_contexts_dag_uid", table_name="contexts")
    op.drop_index("ix_contexts_dag_run", table_name="contexts")
    op.drop_index("ix_contexts_dag_day", table_name="contexts")
