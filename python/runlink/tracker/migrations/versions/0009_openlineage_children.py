"""OpenLineage child runs (state, times, error, the runlink context they link under), pending events that expire
into a visible "unlinked" list, and one merged dataset per (OpenLineage run, dataset, direction)

Revision ID: 0009_openlineage_children
Revises: 0008_instance_aliases
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_openlineage_children"
down_revision = "0008_instance_aliases"
branch_labels = None
depends_on = None

_RUN_COLUMNS = (
    ("root_run_id", sa.String(length=64)),
    ("parent_job_namespace", sa.String(length=1000)),
    ("parent_job_name", sa.String(length=1000)),
    ("context_id", sa.String(length=36)),
    ("state", sa.String(length=16)),
    ("state_stamp", sa.String(length=80)),
    ("ended_at", sa.String(length=40)),
    ("error_message", sa.Text()),
    ("error_stack", sa.Text()),
    ("error_stamp", sa.String(length=80)),
)
_PENDING_COLUMNS = (
    ("run_id", sa.String(length=64)),
    ("event_type", sa.String(length=16)),
    ("event_time", sa.String(length=40)),
    ("job_namespace", sa.String(length=1000)),
    ("job_name", sa.String(length=1000)),
    ("parent_job_namespace", sa.String(length=1000)),
    ("parent_job_name", sa.String(length=1000)),
    ("root_run_id", sa.String(length=64)),
    ("root_job_name", sa.String(length=1000)),
    ("unlinked_at", sa.String(length=40)),
)


def upgrade() -> None:
    for name, type_ in _RUN_COLUMNS:
        op.add_column("openlineage_runs", sa.Column(name, type_, nullable=True))
    op.create_index("ix_openlineage_runs_context", "openlineage_runs", ["context_id"])
    for name, type_ in _PENDING_COLUMNS:
        op.add_column("openlineage_pending", sa.Column(name, type_, nullable=True))
    op.add_column("openlineage_pending", sa.Column("status", sa.String(length=16), nullable=False,
                                                   server_default="pending"))
    op.create_index("ix_openlineage_pending_status", "openlineage_pending", ["status", "received_at"])
    op.create_table(
        "openlineage_datasets",
        sa.Column("op_id", sa.String(length=128), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=False),
        sa.Column("direction", sa.String(length=8), nullable=False),
        sa.Column("facts", sa.Text(), nullable=False),
        sa.Column("merged", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("op_id"),
    )
    op.create_index("ix_openlineage_datasets_run", "openlineage_datasets", ["run_id"])


def downgrade() -> None:
    op.drop_table("openlineage_datasets")
    op.drop_index("ix_openlineage_pending_status", table_name="openlineage_pending")
    with op.batch_alter_table("openlineage_pending") as batch:
        for name, _ in (*_PENDING_COLUMNS, ("status", None)):
            batch.drop_column(name)
    op.drop_index("ix_openlineage_runs_context", table_name="openlineage_runs")
    with op.batch_alter_table("openlineage_runs") as batch:
        for name, _ in _RUN_COLUMNS:
            batch.drop_column(name)
