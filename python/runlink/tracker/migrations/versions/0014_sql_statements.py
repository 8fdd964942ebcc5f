"""statements run by Airflow SQL operators under their attempt (issue 23)

Revision ID: 0014_sql_statements
Revises: 0013_spans
"""

from __future__ import annotations

revision = "0014_sql_statements"
down_revision = "0013_spans"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
