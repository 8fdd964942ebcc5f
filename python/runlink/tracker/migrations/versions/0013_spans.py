"""function spans and dataset operations of the tracking SDK (issue 22)

Revision ID: 0013_spans
Revises: 0012_streaming_queries
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013_spans"
down_revision = "0012_streaming_queries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spans",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.String(length=128), nullable=False),
        sa.Column("context_id", sa.String(length=36), nullable=True),
        sa.Column("parent_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=1000), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.String(length=32), nullable=True),
        sa.Column("end_time", sa.String(length=32), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("args", sa.Text(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_spans_context", "spans", ["context_id"])
    # plain ADD COLUMN (nullable, no default): no table rewrite on SQLite or PostgreSQL, however many metrics
    op.add_column("metrics", sa.Column("span_id", sa.String(length=64), nullable=True))
    op.add_column("dataset_ops", sa.Column("span_id", sa.String(length=64), nullable=True))
    op.add_column("dataset_ops", sa.Column("success", sa.Boolean(), nullable=True))
    op.add_column("dataset_ops", sa.Column("error", sa.Text(), nullable=True))
    op.add_column("dataset_ops", sa.Column("preview", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_ops") as batch:
        for name in ("preview", "error", "success", "span_id"):
            batch.drop_column(name)
    with op.batch_alter_table("metrics") as batch:
        batch.drop_column("span_id")
    op.drop_index("ix_spans_context", table_name="spans")
    op.drop_table("spans")
