"""airflow instances: registry, encrypted credentials, syncer watermark and health

Revision ID: 0002_airflow_instances
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_airflow_instances"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "airflow_instances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("uid", sa.String(length=250), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("api_version", sa.String(length=8), nullable=False),
        sa.Column("auth_kind", sa.String(length=16), nullable=False),
        sa.Column("username", sa.String(length=250), nullable=True),
        sa.Column("secret_enc", sa.Text(), nullable=True),
        sa.Column("secret_ref", sa.String(length=300), nullable=True),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.Column("watermark", sa.String(length=32), nullable=True),
        sa.Column("last_sync_at", sa.String(length=32), nullable=True),
        sa.Column("last_success_at", sa.String(length=32), nullable=True),
        sa.Column("lag_s", sa.Float(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("events_sent", sa.BigInteger(), nullable=False),
        sa.Column("last_cycle", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    with op.batch_alter_table("airflow_instances", schema=None) as batch_op:
        batch_op.create_index("ix_airflow_instances_uid", ["uid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("airflow_instances", schema=None) as batch_op:
        batch_op.drop_index("ix_airflow_instances_uid")
    op.drop_table("airflow_instances")
