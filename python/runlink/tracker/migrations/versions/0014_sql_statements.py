"""statements run by Airflow SQL operators under their attempt (issue 23)

Revision ID: 0014_sql_statements
Revises: 0013_spans
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014_sql_statements"
down_revision = "0013_spans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sql_statements",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("context_id", sa.String(length=36), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("engine", sa.String(length=64), nullable=True),
        sa.Column("host", sa.Text(), nullable=True),
        sa.Column("database", sa.Text(), nullable=True),
        sa.Column("hook", sa.String(length=255), nullable=True),
        sa.Column("query_id", sa.String(length=255), nullable=True),
        sa.Column("session_id", sa.String(length=255), nullable=True),
        sa.Column("statement", sa.Text(), nullable=False),
        sa.Column("statement_truncated", sa.Boolean(), nullable=True),
        sa.Column("start_time", sa.String(length=32), nullable=True),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.Column("rows", sa.BigInteger(), nullable=True),
        sa.Column("bytes_scanned", sa.BigInteger(), nullable=True),
        sa.Column("state", sa.String(length=32), nullable=True),
        sa.Column("success", sa.Boolean(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("tables_read", sa.Text(), nullable=True),
        sa.Column("tables_written", sa.Text(), nullable=True),
        sa.Column("time", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_sql_statements_context", "sql_statements", ["context_id"])


def downgrade() -> None:
    op.drop_index("ix_sql_statements_context", table_name="sql_statements")
    op.drop_table("sql_statements")
