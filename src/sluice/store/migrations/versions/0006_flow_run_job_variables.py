"""Job variables of a flow run.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06

``run_deployment(job_variables=...)`` says how a worker should execute one run
(for process pools: extra environment variables, another working directory).
They are kept with the run, as JSON text in a new nullable ``flow_run`` column;
existing runs get NULL (none).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("flow_run", sa.Column("job_variables", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("flow_run") as batch:
        batch.drop_column("job_variables")
