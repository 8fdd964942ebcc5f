"""per-stage task distributions and call sites (issue 17)

A stage keeps the user's code line that made it (`callsite`), its task distribution as the JVM listener sent it
(`distribution`, JSON: min/p50/p95/max per metric, skew, the slowest task, failed-task reasons) and its duration
skew apart (`task_skew` = max / median task duration), which rules and the diagnosis filter on.

Revision ID: 0015_stage_distributions
Revises: 0014_sql_statements
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015_stage_distributions"
down_revision = "0014_sql_statements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD COLUMN (no batch copy): spark_stages is a WITHOUT ROWID table on SQLite
    op.add_column("spark_stages", sa.Column("callsite", sa.Text(), nullable=True))
    op.add_column("spark_stages", sa.Column("distribution", sa.Text(), nullable=True))
    op.add_column("spark_stages", sa.Column("task_skew", sa.Float(), nullable=True))


def downgrade() -> None:
    op.drop_column("spark_stages", "task_skew")
    op.drop_column("spark_stages", "distribution")
    op.drop_column("spark_stages", "callsite")
