"""function spans and dataset operations of the tracking SDK (issue 22)

Revision ID: 0013_spans
Revises: 0012_streaming_queries
"""

from __future__ import annotations

revision = "0013_spans"
down_revision = "0012_streaming_queries"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
