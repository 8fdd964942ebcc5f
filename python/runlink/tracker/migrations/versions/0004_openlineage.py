"""openlineage: OpenLineage run id -> what it resolved to (Airflow context, Spark app), and events waiting
for their parent run

Revision ID: 0004_openlineage
Revises: 0003_alerts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_openlineage"
down_revision = "0003_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "openlineage_runs",
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("job_namespace", sa.String(length=1000), nullable=True),
        sa.Column("job_name", sa.String(length=1000), nullable=True),
        sa.Column("parent_run_id", sa.String(length=64), nullable=True),
        sa.Column("context", sa.Text(), nullable=True),
        sa.Column("spark_app_id", sa.String(length=255), nullable=True),
        sa.Column("spark_attempt_id", sa.String(length=64), nullable=True),
        sa.Column("started_at", sa.String(length=40), nullable=True),
        sa.Column("updated_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_openlineage_runs_parent", "openlineage_runs", ["parent_run_id"])
    op.create_table(
        "openlineage_pending",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("waiting_on", sa.String(length=64), nullable=False),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("received_at", sa.String(length=40), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_openlineage_pending_waiting", "openlineage_pending", ["waiting_on"])


def downgrade() -> None:
    op.drop_table("openlineage_pending")
    op.drop_table("openlineage_runs")
