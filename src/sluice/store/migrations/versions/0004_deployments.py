"""Deployments, work pools and queues, workers; runs of deployments.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

New tables ``deployment``, ``work_pool``, ``work_queue`` and ``worker``. New
nullable ``flow_run`` columns say which deployment, pool and queue a run
belongs to, when it is due, its idempotency key and the worker that claimed
it; a unique index on ``(deployment_id, idempotency_key)`` makes "one run per
(deployment, scheduled time)" a database guarantee, whatever schedulers race.
Existing rows get NULLs (no deployment), which never collide in that index.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

_RUN_COLUMNS: tuple[tuple[str, sa.types.TypeEngine[Any]], ...] = (
    ("deployment_id", sa.String()),
    ("work_pool_name", sa.String()),
    ("work_queue_name", sa.String()),
    ("scheduled_start_time", sa.Double()),
    ("idempotency_key", sa.String()),
    ("worker_name", sa.String()),
)


def upgrade() -> None:
    for name, type_ in _RUN_COLUMNS:
        op.add_column("flow_run", sa.Column(name, type_, nullable=True))
    op.create_index(
        "ux_flow_run_deployment_idempotency",
        "flow_run",
        ["deployment_id", "idempotency_key"],
        unique=True,
    )
    op.create_index(
        "ix_flow_run_claim", "flow_run", ["work_pool_name", "state_type", "scheduled_start_time"]
    )
    op.create_index("ix_flow_run_deployment_state", "flow_run", ["deployment_id", "state_type"])
    _create_deployment()
    _create_pools_queues_workers()


def _create_deployment() -> None:
    op.create_table(
        "deployment",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("flow_name", sa.String(), nullable=False),
        sa.Column("entrypoint", sa.Text(), nullable=False),
        sa.Column("working_dir", sa.Text(), nullable=True),
        sa.Column("parameters", sa.Text(), nullable=False),
        sa.Column("parameter_schema", sa.Text(), nullable=True),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("version", sa.String(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("work_pool_name", sa.String(), nullable=False),
        sa.Column("work_queue_name", sa.String(), nullable=False),
        sa.Column("schedules", sa.Text(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("max_active_runs", sa.Integer(), nullable=True),
        sa.Column("catchup", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.Column("planned_until", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_deployment_flow_name_name", "deployment", ["flow_name", "name"], unique=True
    )
    op.create_index("ix_deployment_work_pool_name", "deployment", ["work_pool_name"])


def _create_pools_queues_workers() -> None:
    op.create_table(
        "work_pool",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "work_queue",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("pool_name", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("concurrency_limit", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("created", sa.Double(), nullable=False),
        sa.Column("updated", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ux_work_queue_pool_name_name", "work_queue", ["pool_name", "name"], unique=True
    )
    op.create_table(
        "worker",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("pool_name", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("last_heartbeat", sa.Double(), nullable=False),
        sa.Column("hostname", sa.String(), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("created", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ux_worker_pool_name_name", "worker", ["pool_name", "name"], unique=True)


def downgrade() -> None:
    op.drop_table("worker")
    op.drop_table("work_queue")
    op.drop_table("work_pool")
    op.drop_table("deployment")
    op.drop_index("ix_flow_run_deployment_state", table_name="flow_run")
    op.drop_index("ix_flow_run_claim", table_name="flow_run")
    op.drop_index("ux_flow_run_deployment_idempotency", table_name="flow_run")
    # batch mode: SQLite before 3.35 cannot DROP COLUMN (it rebuilds the table).
    with op.batch_alter_table("flow_run") as batch:
        for name, _type in reversed(_RUN_COLUMNS):
            batch.drop_column(name)
