"""Structured Streaming queries and their progress (issue 16, item 3)

Revision ID: 0012_streaming_queries
Revises: 0011_job_context
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012_streaming_queries"
down_revision = "0011_job_context"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "streaming_queries",
        sa.Column("spark_app_pk", sa.String(length=36), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("query_id", sa.String(length=64), nullable=False),
        sa.Column("context_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("start_time", sa.String(length=32), nullable=True),
        sa.Column("end_time", sa.String(length=32), nullable=True),
        sa.Column("total_batches", sa.BigInteger(), nullable=True),
        sa.Column("total_input_rows", sa.BigInteger(), nullable=True),
        sa.Column("total_batch_ms", sa.BigInteger(), nullable=True),
        sa.Column("max_batch_ms", sa.BigInteger(), nullable=True),
        sa.Column("latest_batch_id", sa.BigInteger(), nullable=True),
        sa.Column("input_rows_per_s", sa.Float(), nullable=True),
        sa.Column("processed_rows_per_s", sa.Float(), nullable=True),
        sa.Column("watermark", sa.String(length=64), nullable=True),
        sa.Column("state_rows", sa.BigInteger(), nullable=True),
        sa.Column("sources", sa.Text(), nullable=True),
        sa.Column("sink", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("start_stamp", sa.String(length=170), nullable=True),
        sa.Column("progress_stamp", sa.String(length=170), nullable=True),
        sa.Column("rates_stamp", sa.String(length=170), nullable=True),
        sa.Column("end_stamp", sa.String(length=170), nullable=True),
        sa.PrimaryKeyConstraint("spark_app_pk", "run_id"),
    )
    op.create_index("ix_streaming_queries_context", "streaming_queries", ["context_id"])


def downgrade() -> None:
    op.drop_index("ix_streaming_queries_context", table_name="streaming_queries")
    op.drop_table("streaming_queries")
