"""indexes that keep list pages flat over years of history (issue 19)

Revision ID: 0016_history_indexes
Revises: 0015_stage_distributions
"""

from __future__ import annotations

revision = "0016_history_indexes"
down_revision = "0015_stage_distributions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
