"""dags.is_active: the syncer marks a DAG that disappeared from Airflow (stale or deleted) instead of keeping it
as live

Revision ID: 0006_dag_is_active
Revises: 0005_event_batches
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_dag_is_active"
down_revision = "0005_event_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dags") as batch_op:
        batch_op.add_column(sa.Column("is_active", sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dags") as batch_op:
        batch_op.drop_column("is_active")
