"""per-job Airflow context on shared Spark applications (issue 16, item 2)

A Spark Connect server or a long-running cluster runs the work of several tasks: each job, stage and SQL query
keeps the context of the task that caused it (the event's work_context), and spark_app_contexts lists the
contexts that used an application, so a task's tree finds the shared application without scanning its jobs.

Revision ID: 0011_job_context
Revises: 0010_token_lifecycle
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_job_context"
down_revision = "0010_token_lifecycle"
branch_labels = None
depends_on = None

ID = 36


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy): spark_jobs and spark_stages are WITHOUT ROWID tables on SQLite
    op.add_column("spark_jobs", sa.Column("context_id", sa.String(ID), nullable=True))
    op.add_column("spark_stages", sa.Column("context_id", sa.String(ID), nullable=True))
    op.create_table(
        "spark_app_contexts",
        sa.Column("spark_app_pk", sa.String(ID), primary_key=True),
        sa.Column("context_id", sa.String(ID), primary_key=True),
    )
    op.create_index("ix_spark_app_contexts_context", "spark_app_contexts", ["context_id"])


def downgrade() -> None:
    op.drop_index("ix_spark_app_contexts_context", table_name="spark_app_contexts")
    op.drop_table("spark_app_contexts")
    op.drop_column("spark_stages", "context_id")
    op.drop_column("spark_jobs", "context_id")
