"""token revocation, expiry and last use

Revision ID: 0010_token_lifecycle
Revises: 0009_openlineage_children
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_token_lifecycle"
down_revision = "0009_openlineage_children"
branch_labels = None
depends_on = None

INSTANT = 32


def upgrade() -> None:
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.add_column(sa.Column("expires_at", sa.String(INSTANT), nullable=True))
        batch_op.add_column(sa.Column("revoked_at", sa.String(INSTANT), nullable=True))
        batch_op.add_column(sa.Column("last_used_at", sa.String(INSTANT), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("revoked_at")
        batch_op.drop_column("expires_at")
