"""Reads of deployments, work pools, queues, workers and the runs of a deployment.

Each function takes an open connection (the caller owns the transaction).
A deployment is found by id or by ``FLOW/NAME``; in a flow name, dashes and
underscores match each other, as they do for flows.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from sluice.errors import AmbiguousIdError, NotFoundError
from sluice.schemas import (
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import StateType
from sluice.store.deployment_rows import (
    deployment_from_row,
    work_pool_from_row,
    work_queue_from_row,
    worker_from_row,
)
from sluice.store.rows import flow_run_from_row
from sluice.store.schema import deployment, flow_run, work_pool, work_queue, worker

# -- deployments -------------------------------------------------------------------------


def split_full_name(key: str) -> tuple[str, str] | None:
    """``("flow", "name")`` for ``"flow/name"``; None for anything else."""
    flow_name, sep, name = key.partition("/")
    if not sep or not flow_name or not name or "/" in name:
        return None
    return flow_name, name


def find_deployment(conn: Connection, flow_name: str, name: str) -> DeploymentRecord | None:
    """The deployment ``flow_name/name`` (dash/underscore-insensitive flow name), or None.

    Raises:
        AmbiguousIdError: the flow name matches deployments of several flows.
    """
    row = (
        conn.execute(
            select(deployment).where(deployment.c.flow_name == flow_name, deployment.c.name == name)
        )
        .mappings()
        .first()
    )
    if row is not None:
        return deployment_from_row(row)
    normalized = func.replace(deployment.c.flow_name, "-", "_")
    found = (
        conn.execute(
            select(deployment).where(
                normalized == flow_name.replace("-", "_"), deployment.c.name == name
            )
        )
        .mappings()
        .all()
    )
    if len(found) > 1:
        names = sorted(f"{r['flow_name']}/{r['name']}" for r in found)
        raise AmbiguousIdError("deployment", f"{flow_name}/{name}", names)
    return deployment_from_row(found[0]) if found else None


def get_deployment(conn: Connection, key: str) -> DeploymentRecord:
    """A deployment by id or ``FLOW/NAME``. Raises NotFoundError."""
    parts = split_full_name(key)
    if parts is not None:
        found = find_deployment(conn, *parts)
    else:
        row = conn.execute(select(deployment).where(deployment.c.id == key)).mappings().first()
        found = None if row is None else deployment_from_row(row)
    if found is None:
        raise NotFoundError("deployment", key)
    return found


def list_deployments(
    conn: Connection,
    *,
    flow_name: str | None = None,
    work_pool_name: str | None = None,
    limit: int = 200,
) -> list[DeploymentRecord]:
    """Deployments ordered by flow name then name; ``limit <= 0``: all."""
    stmt = select(deployment).order_by(deployment.c.flow_name, deployment.c.name)
    if flow_name:
        normalized = func.replace(deployment.c.flow_name, "-", "_")
        stmt = stmt.where(normalized == flow_name.replace("-", "_"))
    if work_pool_name:
        stmt = stmt.where(deployment.c.work_pool_name == work_pool_name)
    if limit > 0:
        stmt = stmt.limit(limit)
    return [deployment_from_row(r) for r in conn.execute(stmt).mappings()]


def list_deployment_runs(
    conn: Connection,
    deployment_id: str,
    *,
    state_types: Sequence[StateType] | None = None,
    scheduled_after: _dt.datetime | None = None,
    scheduled_before: _dt.datetime | None = None,
    limit: int = 200,
) -> list[FlowRunRecord]:
    """Runs of a deployment by scheduled start time (then id); ``limit <= 0``: all.

    ``scheduled_after`` is inclusive, ``scheduled_before`` exclusive.
    """
    stmt = select(flow_run).where(flow_run.c.deployment_id == deployment_id)
    if state_types:
        stmt = stmt.where(flow_run.c.state_type.in_(sorted({t.value for t in state_types})))
    if scheduled_after is not None:
        stmt = stmt.where(flow_run.c.scheduled_start_time >= scheduled_after.timestamp())
    if scheduled_before is not None:
        stmt = stmt.where(flow_run.c.scheduled_start_time < scheduled_before.timestamp())
    stmt = stmt.order_by(flow_run.c.scheduled_start_time, flow_run.c.id)
    if limit > 0:
        stmt = stmt.limit(limit)
    return [flow_run_from_row(r) for r in conn.execute(stmt).mappings()]


# -- work pools, queues, workers ----------------------------------------------------------


def find_work_pool(conn: Connection, name: str) -> WorkPoolRecord | None:
    """The pool named ``name``, or None."""
    row = conn.execute(select(work_pool).where(work_pool.c.name == name)).mappings().first()
    return None if row is None else work_pool_from_row(row)


def get_work_pool(conn: Connection, name: str) -> WorkPoolRecord:
    """The pool named ``name``. Raises NotFoundError."""
    found = find_work_pool(conn, name)
    if found is None:
        raise NotFoundError("work pool", name)
    return found


def list_work_pools(conn: Connection) -> list[WorkPoolRecord]:
    """Every pool, by name."""
    stmt = select(work_pool).order_by(work_pool.c.name)
    return [work_pool_from_row(r) for r in conn.execute(stmt).mappings()]


def find_work_queue(conn: Connection, pool_name: str, name: str) -> WorkQueueRecord | None:
    """The queue ``name`` of pool ``pool_name``, or None."""
    stmt = select(work_queue).where(work_queue.c.pool_name == pool_name, work_queue.c.name == name)
    row = conn.execute(stmt).mappings().first()
    return None if row is None else work_queue_from_row(row)


def get_work_queue(conn: Connection, pool_name: str, name: str) -> WorkQueueRecord:
    """A queue of a pool. Raises NotFoundError (for the pool, or the queue)."""
    get_work_pool(conn, pool_name)
    found = find_work_queue(conn, pool_name, name)
    if found is None:
        raise NotFoundError("work queue", f"{pool_name}/{name}")
    return found


def list_work_queues(conn: Connection, pool_name: str) -> list[WorkQueueRecord]:
    """The queues of a pool, by priority then name. Raises NotFoundError for the pool."""
    get_work_pool(conn, pool_name)
    stmt = (
        select(work_queue)
        .where(work_queue.c.pool_name == pool_name)
        .order_by(work_queue.c.priority, work_queue.c.name)
    )
    return [work_queue_from_row(r) for r in conn.execute(stmt).mappings()]


def get_worker(conn: Connection, pool_name: str, name: str) -> WorkerRecord:
    """A worker of a pool. Raises NotFoundError."""
    stmt = select(worker).where(worker.c.pool_name == pool_name, worker.c.name == name)
    row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError("worker", f"{pool_name}/{name}")
    return worker_from_row(row)


def list_workers(
    conn: Connection, pool_name: str, timeout: float | None = None
) -> list[WorkerRecord]:
    """The workers of a pool, most recently heard from first.

    With ``timeout``, a worker saying ONLINE whose last heartbeat is older than
    that (against the database's clock; worker heartbeats still carry the
    worker's time) reads OFFLINE: it died without saying so (SIGKILL, a lost
    machine).
    """
    status: Any = worker.c.status
    if timeout is not None:
        from sluice.store.clock import db_now

        lapsed = and_(worker.c.status == "ONLINE", worker.c.last_heartbeat < db_now() - timeout)
        status = case((lapsed, "OFFLINE"), else_=worker.c.status)
    columns = [c for c in worker.c if c.name != "status"]
    stmt = (
        select(*columns, status.label("status"))
        .where(worker.c.pool_name == pool_name)
        .order_by(worker.c.last_heartbeat.desc(), worker.c.name)
    )
    return [worker_from_row(r) for r in conn.execute(stmt).mappings()]


def count_active_runs(conn: Connection, column: Any, values: Sequence[str]) -> dict[str, int]:
    """How many runs per value of ``column`` are Pending, Running or Cancelling."""
    if not values:
        return {}
    stmt = (
        select(column, func.count())
        .where(column.in_(sorted(set(values))), flow_run.c.state_type.in_(ACTIVE_TYPES))
        .group_by(column)
    )
    return {key: int(n) for key, n in conn.execute(stmt).all()}


#: run states that hold a slot of a concurrency limit
ACTIVE_TYPES = (StateType.PENDING.value, StateType.RUNNING.value, StateType.CANCELLING.value)
