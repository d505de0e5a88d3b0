"""Writes of deployments, work pools, queues and workers, and creating runs of deployments.

Every function takes a connection inside one write transaction (see
:func:`sluice.store.database.run_write`): these writes are synchronous and
committed when the caller returns, unlike the engine's buffered run records.
Reads by name live in :mod:`sluice.store.deployment_queries`; claiming runs
in :mod:`sluice.store.claims`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select, update

from sluice.errors import ConflictError, InvalidInputError
from sluice.schemas import (
    SCHEDULED_KEY_PREFIX,
    DeploymentRecord,
    FlowRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
    new_id,
)
from sluice.states import StateType
from sluice.store import deployment_queries as dq
from sluice.store.deployment_rows import (
    WORKER,
    deployment_row,
    work_pool_row,
    work_queue_row,
    worker_row,
)
from sluice.store.rows import dt, dumps, flow_row, flow_run_from_row
from sluice.store.schema import deployment, flow, flow_run, run_state, work_pool, work_queue, worker
from sluice.store.writes import _dialect_insert

#: the queue every pool has
DEFAULT_QUEUE = "default"


def _insert(conn: Connection) -> Any:
    return _dialect_insert(conn.dialect.name)


def state_history_row(
    run_id: str,
    type_: StateType,
    name: str,
    at: float,
    message: str | None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``run_state`` row for a flow run (``details`` stored as JSON)."""
    return {
        "run_id": run_id,
        "kind": "flow",
        "type": type_.value,
        "name": name,
        "timestamp": at,
        "message": message,
        "details": None if details is None else dumps(dict(details)),
    }


# -- work pools and queues -------------------------------------------------------------


def create_work_pool(conn: Connection, pool: WorkPoolRecord) -> WorkPoolRecord:
    """Insert ``pool`` and its ``default`` queue. Raises ConflictError if the name is taken."""
    if dq.find_work_pool(conn, pool.name) is not None:
        raise ConflictError("work pool", pool.name, "a work pool of that name exists")
    pool = dataclasses.replace(pool, id=new_id())  # a caller's id could collide
    if not _insert_new(conn, work_pool, work_pool_row(pool), ["name"]):
        raise ConflictError("work pool", pool.name, "a work pool of that name exists")
    queue = WorkQueueRecord(pool.name, DEFAULT_QUEUE, created=pool.created, updated=pool.updated)
    conn.execute(_insert(conn)(work_queue).values(work_queue_row(queue)).on_conflict_do_nothing())
    return pool


def _insert_new(conn: Connection, table: Any, row: dict[str, Any], unique: list[str]) -> bool:
    """Insert ``row`` unless a row with the same ``unique`` values exists; whether it did.

    Two writers creating the same name at once (PostgreSQL) then get one
    insert and one False, not a unique violation.
    """
    stmt = (
        _insert(conn)(table)
        .values(row)
        .on_conflict_do_nothing(index_elements=unique)
        .returning(table.c.id)
    )
    return conn.execute(stmt).first() is not None


def ensure_work_queue(conn: Connection, pool_name: str, queue_name: str, now: float) -> None:
    """Create the pool (type process) and the queue when missing; never fails on a race."""
    insert = _insert(conn)
    moment = dt(now)
    assert moment is not None
    pool = WorkPoolRecord(pool_name, created=moment, updated=moment)
    conn.execute(insert(work_pool).values(work_pool_row(pool)).on_conflict_do_nothing())
    for name in dict.fromkeys((DEFAULT_QUEUE, queue_name)):
        queue = WorkQueueRecord(pool_name, name, created=moment, updated=moment)
        conn.execute(insert(work_queue).values(work_queue_row(queue)).on_conflict_do_nothing())


_POOL_FIELDS = frozenset({"description", "concurrency_limit", "paused"})
_QUEUE_FIELDS = frozenset({"description", "concurrency_limit", "paused", "priority"})


def update_work_pool(
    conn: Connection, name: str, changes: Mapping[str, Any], now: float
) -> WorkPoolRecord:
    """Change some of a pool's ``description``, ``concurrency_limit``, ``paused``."""
    _check_fields("work pool", changes, _POOL_FIELDS)
    dq.get_work_pool(conn, name)
    values = {**changes, "updated": now}
    conn.execute(update(work_pool).where(work_pool.c.name == name).values(values))
    return dq.get_work_pool(conn, name)


def delete_work_pool(conn: Connection, name: str) -> None:
    """Delete a pool and its queues. Raises ConflictError while deployments use it."""
    dq.get_work_pool(conn, name)
    users = dq.list_deployments(conn, work_pool_name=name, limit=6)
    if users:
        shown = ", ".join(d.full_name for d in users[:5])
        raise ConflictError(
            "work pool", name, f"deployments still use it ({shown}); delete or move them first"
        )
    conn.execute(delete(work_queue).where(work_queue.c.pool_name == name))
    conn.execute(delete(worker).where(worker.c.pool_name == name))
    conn.execute(delete(work_pool).where(work_pool.c.name == name))


def create_work_queue(conn: Connection, queue: WorkQueueRecord) -> WorkQueueRecord:
    """Insert ``queue`` into its (existing) pool. Raises NotFoundError / ConflictError."""
    dq.get_work_pool(conn, queue.pool_name)
    if dq.find_work_queue(conn, queue.pool_name, queue.name) is not None:
        key = f"{queue.pool_name}/{queue.name}"
        raise ConflictError("work queue", key, "a queue of that name exists in the pool")
    queue = dataclasses.replace(queue, id=new_id())  # a caller's id could collide
    if not _insert_new(conn, work_queue, work_queue_row(queue), ["pool_name", "name"]):
        key = f"{queue.pool_name}/{queue.name}"
        raise ConflictError("work queue", key, "a queue of that name exists in the pool")
    return queue


def update_work_queue(
    conn: Connection, pool_name: str, name: str, changes: Mapping[str, Any], now: float
) -> WorkQueueRecord:
    """Change some of a queue's ``priority``, ``description``, ``concurrency_limit``, ``paused``."""
    _check_fields("work queue", changes, _QUEUE_FIELDS)
    dq.get_work_queue(conn, pool_name, name)
    values = {**changes, "updated": now}
    conn.execute(
        update(work_queue)
        .where(work_queue.c.pool_name == pool_name, work_queue.c.name == name)
        .values(values)
    )
    return dq.get_work_queue(conn, pool_name, name)


def delete_work_queue(conn: Connection, pool_name: str, name: str) -> None:
    """Delete a queue. Raises ConflictError for the default queue or one deployments use."""
    dq.get_work_queue(conn, pool_name, name)
    key = f"{pool_name}/{name}"
    if name == DEFAULT_QUEUE:
        raise ConflictError("work queue", key, "every pool keeps its default queue")
    users = [
        d
        for d in dq.list_deployments(conn, work_pool_name=pool_name, limit=0)
        if d.work_queue_name == name
    ]
    if users:
        shown = ", ".join(d.full_name for d in users[:5])
        raise ConflictError("work queue", key, f"deployments still use it ({shown})")
    conn.execute(
        delete(work_queue).where(work_queue.c.pool_name == pool_name, work_queue.c.name == name)
    )


def _check_fields(kind: str, changes: Mapping[str, Any], allowed: frozenset[str]) -> None:
    unknown = sorted(set(changes) - allowed)
    if unknown:
        raise InvalidInputError(
            f"cannot change {', '.join(unknown)} of a {kind}; "
            f"changeable: {', '.join(sorted(allowed))}"
        )


# -- deployments -------------------------------------------------------------------------


def upsert_deployment(conn: Connection, rec: DeploymentRecord, now: float) -> DeploymentRecord:
    """Create the deployment, or replace the one of the same flow and name.

    A replaced deployment keeps its id and creation time. When its schedules
    change, the upcoming runs the old schedules created (not started, due
    after ``now``) are deleted and planning restarts from ``now``; otherwise
    its planning position is kept. The pool and queue are created if missing,
    and the flow is registered.
    """
    moment = dt(now)
    assert moment is not None
    ensure_work_queue(conn, rec.work_pool_name, rec.work_queue_name, now)
    conn.execute(
        _insert(conn)(flow)
        .values(flow_row(FlowRecord(rec.flow_name, description=rec.description, created=moment)))
        .on_conflict_do_nothing()
    )
    old = dq.find_deployment(conn, rec.flow_name, rec.name)
    if old is None:
        # The store names new rows: an id given by a caller could collide.
        new = dataclasses.replace(
            rec, id=new_id(), created=moment, updated=moment, planned_until=None
        )
        if _insert_new(conn, deployment, deployment_row(new), ["flow_name", "name"]):
            return new
        # Another writer created it since we looked (PostgreSQL): update theirs.
        old = dq.get_deployment(conn, f"{rec.flow_name}/{rec.name}")
    same_schedules = old.schedules == rec.schedules
    new = dataclasses.replace(
        rec,
        id=old.id,
        created=old.created,
        updated=moment,
        planned_until=old.planned_until if same_schedules else None,
    )
    if not same_schedules:
        delete_upcoming_scheduled_runs(conn, old.id, now)
    row = deployment_row(new)
    del row["id"]
    conn.execute(update(deployment).where(deployment.c.id == old.id).values(row))
    return new


_DEPLOYMENT_FIELDS = frozenset(
    {
        "paused",
        "concurrency_limit",
        "max_active_runs",
        "catchup",
        "description",
        "tags",
        "parameters",
        "version",
        "schedules",
    }
)
_JSON_FIELDS = frozenset({"tags", "parameters", "schedules"})


def update_deployment(
    conn: Connection, key: str, changes: Mapping[str, Any], now: float
) -> DeploymentRecord:
    """Change some settings of a deployment (see ``_DEPLOYMENT_FIELDS``) by id or FLOW/NAME.

    New default ``parameters`` are checked against the deployment's schema
    (complete, if it has schedules). Pausing deletes the upcoming runs its
    schedules created (due after ``now``, not started) and restarts planning
    when it is resumed; new ``schedules`` (already in their stored form)
    replace the old ones the same way, with planning restarting from ``now``.
    """
    _check_fields("deployment", changes, _DEPLOYMENT_FIELDS)
    current = dq.get_deployment(conn, key)
    if "parameters" in changes or "schedules" in changes:
        from sluice.parameter_schemas import check_deployment_parameters

        check_deployment_parameters(
            current.flow_name,
            current.parameter_schema,
            changes.get("parameters", current.parameters),
            changes.get("schedules", current.schedules),
        )
    values: dict[str, Any] = {"updated": now}
    for name, value in changes.items():
        values[name] = dumps(value) if name in _JSON_FIELDS else value
    new_schedules = "schedules" in changes and changes["schedules"] != current.schedules
    if new_schedules or (changes.get("paused") is True and not current.paused):
        # A pause is on purpose: the ticks it covers are neither run nor
        # recorded as missed. Upcoming runs go; planning restarts at the
        # resume (or, for new schedules, at once).
        delete_upcoming_scheduled_runs(conn, current.id, now)
        values["planned_until"] = None
    conn.execute(update(deployment).where(deployment.c.id == current.id).values(values))
    return dq.get_deployment(conn, current.id)


def set_planned_until(conn: Connection, deployment_id: str, planned_until: float) -> None:
    """Advance a deployment's planning position (never moves it back)."""
    conn.execute(
        update(deployment)
        .where(deployment.c.id == deployment_id)
        .where(
            (deployment.c.planned_until.is_(None)) | (deployment.c.planned_until < planned_until)
        )
        .values(planned_until=planned_until)
    )


def delete_deployment(conn: Connection, key: str, now: float) -> DeploymentRecord:
    """Delete a deployment; its runs that have not started are Cancelled (history kept)."""
    current = dq.get_deployment(conn, key)
    waiting = conn.execute(
        select(flow_run.c.id)
        .where(
            flow_run.c.deployment_id == current.id,
            flow_run.c.state_type == StateType.SCHEDULED.value,
        )
        .order_by(flow_run.c.id)
    ).scalars()
    message = f"Its deployment {current.full_name} was deleted"
    for run_id in list(waiting):
        set_run_state(conn, run_id, StateType.CANCELLED, "Cancelled", message, now)
    conn.execute(delete(deployment).where(deployment.c.id == current.id))
    return current


def delete_upcoming_scheduled_runs(conn: Connection, deployment_id: str, now: float) -> int:
    """Delete the not-yet-due runs a deployment's schedules created; how many."""
    ids = list(
        conn.execute(
            select(flow_run.c.id).where(
                flow_run.c.deployment_id == deployment_id,
                flow_run.c.state_name == "Scheduled",
                flow_run.c.state_type == StateType.SCHEDULED.value,
                flow_run.c.run_count == 0,
                flow_run.c.scheduled_start_time > now,
                flow_run.c.idempotency_key.startswith(SCHEDULED_KEY_PREFIX, autoescape=True),
            )
        ).scalars()
    )
    if ids:
        conn.execute(delete(run_state).where(run_state.c.run_id.in_(ids)))
        conn.execute(delete(flow_run).where(flow_run.c.id.in_(ids)))
    return len(ids)


# -- runs of deployments ------------------------------------------------------------------


def set_run_state(
    conn: Connection,
    run_id: str,
    type_: StateType,
    name: str,
    message: str | None,
    now: float,
    *,
    details: Mapping[str, Any] | None = None,
    **extra: Any,
) -> None:
    """Move a flow run to a state (row and history, with ``details`` if given);
    ``extra`` columns set alongside."""
    values: dict[str, Any] = {
        "state_type": type_.value,
        "state_name": name,
        "state_message": message,
        "updated": now,
        **extra,
    }
    if type_ in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED):
        values.setdefault("end_time", now)
    # Values go as parameters of a cached statement, not into the statement:
    # SQLAlchemy would build (and hash) a new statement for every call.
    stmt = _state_update(tuple(sorted(values)))
    conn.execute(stmt, {**{f"v_{k}": v for k, v in values.items()}, "b_id": run_id})
    history = state_history_row(run_id, type_, name, now, message, details)
    conn.execute(run_state.insert(), history)


@functools.cache
def _state_update(columns: tuple[str, ...]) -> Any:
    return (
        update(flow_run)
        .where(flow_run.c.id == bindparam("b_id"))
        .values({c: bindparam(f"v_{c}") for c in columns})
    )


@functools.cache
def _insert_run_once(dialect: str) -> Any:
    """INSERT of a run that does nothing when its (deployment, key) has a run already."""
    return (
        _dialect_insert(dialect)(flow_run)
        .on_conflict_do_nothing(index_elements=["deployment_id", "idempotency_key"])
        # RETURNING, not rowcount: psycopg reports -1 for this statement.
        .returning(flow_run.c.id)
    )


def insert_deployment_run(
    conn: Connection, run: FlowRunRecord, message: str | None = None
) -> tuple[FlowRunRecord, bool]:
    """Insert a run of a deployment with its first state; ``(run, True)``.

    With an idempotency key already used for the deployment, nothing is
    written and the existing run comes back: ``(existing, False)``. Safe
    against concurrent inserts of the same key (the unique index decides).
    """
    from sluice.store.rows import flow_run_row

    # Every column the run carries, those of its deployment included: the
    # engine's later writes of the run never change them.
    row = flow_run_row(run)
    if run.idempotency_key is None:
        conn.execute(flow_run.insert(), row)
    else:
        if conn.execute(_insert_run_once(conn.dialect.name), row).first() is None:
            existing = conn.execute(
                select(flow_run).where(
                    flow_run.c.deployment_id == run.deployment_id,
                    flow_run.c.idempotency_key == run.idempotency_key,
                )
            ).mappings()
            return flow_run_from_row(existing.one()), False
    history = state_history_row(
        run.id, run.state_type, run.state_name, run.updated.timestamp(), message
    )
    conn.execute(run_state.insert(), history)
    return run, True


def insert_deployment_runs(
    conn: Connection, runs: Sequence[FlowRunRecord], messages: Sequence[str | None]
) -> int:
    """Insert many runs (see :func:`insert_deployment_run`); how many were new."""
    return sum(
        insert_deployment_run(conn, run, message)[1]
        for run, message in zip(runs, messages, strict=True)
    )


# -- workers ----------------------------------------------------------------------------------


def mark_lapsed_workers_offline(conn: Connection, timeout: float) -> int:
    """Record OFFLINE for workers saying ONLINE whose heartbeat is ``timeout`` seconds old
    (on the database's clock): they died without saying so. How many."""
    from sluice.store.clock import db_now

    done = conn.execute(
        update(worker)
        .where(worker.c.status == "ONLINE", worker.c.last_heartbeat < db_now() - timeout)
        .values(status="OFFLINE")
    )
    return int(done.rowcount or 0)


def worker_heartbeat(conn: Connection, rec: WorkerRecord) -> WorkerRecord:
    """Create or update a worker's row from its heartbeat (its id and creation time kept)."""
    key = ("pool_name", "name")
    stmt = _insert(conn)(worker).values({"id": new_id(), **worker_row(rec)})
    changed = [c for c in WORKER.batched_names if c not in key and c not in WORKER.kept]
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key), set_={c: stmt.excluded[c] for c in changed}
    )
    conn.execute(stmt)
    return dq.get_worker(conn, rec.pool_name, rec.name)
