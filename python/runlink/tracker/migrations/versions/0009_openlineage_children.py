"""OpenLineage child runs, pending and unlinked events

Revision ID: 0009_openlineage_children
Revises: 0008_instance_aliases
"""

from __future__ import annotations

revision = "0009_openlineage_children"
down_revision = "0008_instance_aliases"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
