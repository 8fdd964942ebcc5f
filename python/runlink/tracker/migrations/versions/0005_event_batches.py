"""event batches: the audit copy of accepted events moves from one JSON text per event (events.raw) to one
zstd-compressed blob per batch (event_batches), found from events by batch_id and position

Revision ID: 0005_event_batches
Revises: 0004_openlineage
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_event_batches"
down_revision = "0004_openlineage"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "event_batches",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("received_at", sa.String(length=32), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("events") as batch_op:  # older rows keep their raw JSON
        batch_op.alter_column("raw", existing_type=sa.Text(), nullable=True)
        batch_op.add_column(sa.Column("batch_id", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("position")
        batch_op.drop_column("batch_id")
    op.drop_table("event_batches")
