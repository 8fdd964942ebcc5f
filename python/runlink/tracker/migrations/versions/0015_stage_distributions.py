"""per-stage task distributions and call sites (issue 17)

Revision ID: 0015_stage_distributions
Revises: 0014_sql_statements
"""

from __future__ import annotations

revision = "0015_stage_distributions"
down_revision = "0014_sql_statements"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
