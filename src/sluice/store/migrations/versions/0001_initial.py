"""The initial Sluice store: flows, flow runs, task runs, state history, logs.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Written by hand to match ``sluice/store/schema.py`` at this revision; a test
checks that upgrading an empty database yields what ``create_all`` makes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_AUTO_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "flow",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("version", sa.String(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "flow_run",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("flow_name", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("state_type", sa.String(), nullable=False),
        sa.Column("state_name", sa.String(), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=True),
        sa.Column("end_time", sa.Double(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.Column("heartbeat", sa.Double(), nullable=True),
        sa.Column("parent_flow_run_id", sa.String(), nullable=True),
        sa.Column("parent_task_run_id", sa.String(), nullable=True),
        sa.Column("flow_version", sa.String(), nullable=True),
        sa.Column("hostname", sa.String(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_flow_run_flow_name_created", "flow_run", ["flow_name", "created"])
    op.create_index("ix_flow_run_created", "flow_run", ["created"])
    op.create_index("ix_flow_run_state_type", "flow_run", ["state_type"])
    op.create_index("ix_flow_run_parent_flow_run_id", "flow_run", ["parent_flow_run_id"])
    op.create_table(
        "task_run",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("task_name", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("call_index", sa.Integer(), nullable=False),
        sa.Column("map_index", sa.Integer(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("upstream_ids", sa.Text(), nullable=False),
        sa.Column("state_type", sa.String(), nullable=False),
        sa.Column("state_name", sa.String(), nullable=False),
        sa.Column("state_message", sa.Text(), nullable=True),
        sa.Column("run_count", sa.Integer(), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=True),
        sa.Column("end_time", sa.Double(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.Column("cache_key", sa.String(), nullable=True),
        sa.Column("result", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_task_run_flow_run_id_created", "task_run", ["flow_run_id", "created"])
    op.create_index("ix_task_run_cache_key", "task_run", ["cache_key"])
    op.create_table(
        "run_state",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("details", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_state_run_id", "run_state", ["run_id"])
    op.create_table(
        "log",
        sa.Column("id", _AUTO_ID, autoincrement=True, nullable=False),
        sa.Column("flow_run_id", sa.String(), nullable=True),
        sa.Column("task_run_id", sa.String(), nullable=True),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("logger", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_log_flow_run_id", "log", ["flow_run_id"])
    op.create_index("ix_log_task_run_id", "log", ["task_run_id"])


def downgrade() -> None:
    op.drop_table("log")
    op.drop_table("run_state")
    op.drop_table("task_run")
    op.drop_table("flow_run")
    op.drop_table("flow")
