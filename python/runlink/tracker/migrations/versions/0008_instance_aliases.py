"""Airflow instance aliases (alias uid -> instance uid)

Revision ID: 0008_instance_aliases
Revises: 0007_context_neighbourhood
"""

from __future__ import annotations

revision = "0008_instance_aliases"
down_revision = "0007_context_neighbourhood"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
