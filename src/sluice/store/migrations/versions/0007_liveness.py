"""Flow runs record their execution attempt and their process's identity.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23

``attempt`` numbers the executions of a run: each process that starts (or
resumes) it takes the next number, and the store refuses writes from a
process holding an older one (see docs/architecture.md, "Liveness and
fencing"). ``host_id`` (the boot and PID namespace of the run's process) and
``pid_started`` (that process's start time) let an observer on the same
host see at once that the process is gone, instead of waiting for its
heartbeat to lapse. Existing rows get NULLs: attempt 0, identity unknown.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("flow_run", sa.Column("attempt", sa.Integer(), nullable=True))
    op.add_column("flow_run", sa.Column("host_id", sa.String(), nullable=True))
    op.add_column("flow_run", sa.Column("pid_started", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_run") as batch:
        batch.drop_column("pid_started")
        batch.drop_column("host_id")
        batch.drop_column("attempt")
