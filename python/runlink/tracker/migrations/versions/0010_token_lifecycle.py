"""token revocation, expiry and last use

Revision ID: 0010_token_lifecycle
Revises: 0009_openlineage_children
"""

from __future__ import annotations

revision = "0010_token_lifecycle"
down_revision = "0009_openlineage_children"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
