"""Airflow instance aliases: another uid under which an instance's events arrive (a migrated deployment,
Databand's instance UUID) -> the instance's uid

Revision ID: 0008_instance_aliases
Revises: 0007_context_neighbourhood
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_instance_aliases"
down_revision = "0007_context_neighbourhood"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instance_aliases",
        sa.Column("alias", sa.String(length=250), nullable=False),
        sa.Column("uid", sa.String(length=250), nullable=False),
        sa.Column("created_at", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("alias"),
    )
    op.create_index("ix_instance_aliases_uid", "instance_aliases", ["uid"])


def downgrade() -> None:
    op.drop_index("ix_instance_aliases_uid", table_name="instance_aliases")
    op.drop_table("instance_aliases")
