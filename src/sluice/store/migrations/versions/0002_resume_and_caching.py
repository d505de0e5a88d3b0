"""Durable resume, caching and crash detection.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-16

Adds ``flow_run.entrypoint`` and ``flow_run.parameters_ref`` (what a resume
needs to run a flow again), ``task_run.cache_expiration`` and
``task_run.input_hash`` (cache validity, the journal's input check), and an
index for reading a flow run's journal. Every new column is nullable, so a
plain ``ADD COLUMN`` works on SQLite and PostgreSQL alike, rows are kept, and
no table is rebuilt.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("flow_run", sa.Column("entrypoint", sa.Text(), nullable=True))
    op.add_column("flow_run", sa.Column("parameters_ref", sa.Text(), nullable=True))
    op.add_column("task_run", sa.Column("cache_expiration", sa.Double(), nullable=True))
    op.add_column("task_run", sa.Column("input_hash", sa.String(), nullable=True))
    op.create_index("ix_task_run_flow_run_id_state_type", "task_run", ["flow_run_id", "state_type"])


def downgrade() -> None:
    # batch mode: SQLite before 3.35 cannot DROP COLUMN (it rebuilds the table).
    op.drop_index("ix_task_run_flow_run_id_state_type", table_name="task_run")
    with op.batch_alter_table("task_run") as batch:
        batch.drop_column("input_hash")
        batch.drop_column("cache_expiration")
    with op.batch_alter_table("flow_run") as batch:
        batch.drop_column("parameters_ref")
        batch.drop_column("entrypoint")
