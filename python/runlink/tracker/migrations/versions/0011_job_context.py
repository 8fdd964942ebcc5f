"""per-job Airflow context on shared Spark applications (issue 16, item 2)

Revision ID: 0011_job_context
Revises: 0010_token_lifecycle
"""

from __future__ import annotations

revision = "0011_job_context"
down_revision = "0010_token_lifecycle"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
