"""Index flow runs by state, then creation time.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22

The dashboard counts the runs of a time window by state, reading only runs
that are not Completed: ``ix_flow_run_state_type`` finds those but then reads
every one of them, whatever its age, to test ``created``. An index on
``(state_type, created)`` reads just the window of each state. It replaces the
``state_type`` index, whose lookups it serves as well. Only an index changes.
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_flow_run_state_type_created", "flow_run", ["state_type", "created"])
    op.drop_index("ix_flow_run_state_type", table_name="flow_run")


def downgrade() -> None:
    op.create_index("ix_flow_run_state_type", "flow_run", ["state_type"])
    op.drop_index("ix_flow_run_state_type_created", table_name="flow_run")
