"""Structured Streaming queries and their progress (issue 16, item 3)

Revision ID: 0012_streaming_queries
Revises: 0011_job_context
"""

from __future__ import annotations

revision = "0012_streaming_queries"
down_revision = "0011_job_context"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
