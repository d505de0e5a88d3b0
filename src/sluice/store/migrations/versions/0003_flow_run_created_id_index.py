"""Index the runs list's full sort key.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-17

Runs are listed ordered by ``created DESC, id DESC``. ``ix_flow_run_created``
covers only ``created``, so the database sorts the tie-breaker itself (SQLite
builds a temporary B-tree), which makes deep pages slow. It is replaced by
``ix_flow_run_created_id`` on ``(created, id)``, which a backward scan reads in
list order. Only an index changes: no rows are touched and no table is rebuilt.
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_flow_run_created", table_name="flow_run")
    op.create_index("ix_flow_run_created_id", "flow_run", ["created", "id"])


def downgrade() -> None:
    op.drop_index("ix_flow_run_created_id", table_name="flow_run")
    op.create_index("ix_flow_run_created", "flow_run", ["created"])
