"""Workers claiming due runs: Scheduled/Late/AwaitingResume -> Pending, each run once.

One call is one write transaction. On SQLite that is ``BEGIN IMMEDIATE``:
claimers take turns, so a run can only be claimed once. On PostgreSQL the
candidate rows are locked with ``FOR UPDATE SKIP LOCKED``, so concurrent
claimers take different runs without waiting on each other; each update
re-checks the state, and only runs this call moved are returned.

Concurrency limits (pool, queue, deployment) count runs that are Pending,
Running or Cancelling. Two PostgreSQL claimers could each see the same free
slot, so when a limit applies its row (the pool's, a deployment's) is locked
first (``FOR UPDATE``): claims under a limit take turns, unlimited pools keep
the lock-free path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    Connection,
    bindparam,
    false,
    func,
    or_,
    select,
    update,
)

from sluice.errors import NotFoundError
from sluice.schemas import FlowRunRecord, WorkPoolRecord, WorkQueueRecord
from sluice.states import StateType
from sluice.store import deployment_queries as dq
from sluice.store.deployment_rows import work_queue_from_row
from sluice.store.deployment_writes import set_run_state
from sluice.store.rows import flow_run_from_row
from sluice.store.schema import deployment, flow_run, work_pool, work_queue, worker

#: state names of Scheduled-type runs a worker may pick up. Not AwaitingRetry:
#: that is a run waiting in its own process between attempts.
CLAIMABLE_NAMES = ("Scheduled", "Late", "AwaitingResume")
_PAGE_MIN = 64


@dataclass
class _Slots:
    """Free slots of the limits that apply to one claim (None: unlimited)."""

    pool: int | None
    queues: dict[str, int | None]
    deployments: dict[str, int | None] = field(default_factory=dict)

    def take(self, queue: str | None, deployment_id: str | None) -> bool:
        deployment_free = self.deployments.get(deployment_id or "")
        queue_free = self.queues.get(queue or "")
        if self.pool is not None and self.pool <= 0:
            return False
        if queue_free is not None and queue_free <= 0:
            return False
        if deployment_free is not None and deployment_free <= 0:
            return False
        if self.pool is not None:
            self.pool -= 1
        if queue_free is not None:
            self.queues[queue or ""] = queue_free - 1
        if deployment_free is not None:
            self.deployments[deployment_id or ""] = deployment_free - 1
        return True

    def exhausted(self) -> bool:
        return self.pool is not None and self.pool <= 0


def claim_flow_runs(
    conn: Connection,
    pool_name: str | None,
    *,
    worker_name: str,
    limit: int,
    now: float,
    queues: Sequence[str] | None = None,
    deployment_ids: Sequence[str] | None = None,
) -> list[FlowRunRecord]:
    """Move up to ``limit`` due runs to Pending for ``worker_name``; the runs moved.

    Runs come from ``pool_name`` (its open queues, or only ``queues``), or,
    with ``pool_name`` None, from the deployments ``deployment_ids`` whatever
    their pool. Due means ``scheduled_start_time <= now``; order is queue
    priority, then scheduled time. Paused pools, queues and deployments give
    nothing; concurrency limits are honoured.

    Raises:
        NotFoundError: the pool, or a queue named in ``queues``, does not exist.
    """
    if limit <= 0:
        return []
    conditions: list[ColumnElement[bool]] = [
        flow_run.c.state_type == StateType.SCHEDULED.value,
        flow_run.c.state_name.in_(CLAIMABLE_NAMES),
        flow_run.c.scheduled_start_time <= now,
        or_(deployment.c.id.is_(None), deployment.c.paused == false()),
    ]
    pg = conn.dialect.name == "postgresql"
    #: queue names of each priority level, highest priority first (None: no queues)
    levels: list[list[str] | None] = [None]
    if pool_name is not None:
        pool = dq.get_work_pool(conn, pool_name)
        if pool.paused:
            return []
        open_queues = _open_queues(conn, pool, queues)
        if not open_queues:
            return []
        if pg and (
            pool.concurrency_limit is not None
            or any(q.concurrency_limit is not None for q in open_queues)
        ):
            conn.execute(select(work_pool.c.id).where(work_pool.c.id == pool.id).with_for_update())
        slots = _pool_slots(conn, pool, open_queues)
        conditions.append(flow_run.c.work_pool_name == pool.name)
        by_priority: dict[int, list[str]] = {}
        for q in open_queues:
            by_priority.setdefault(q.priority, []).append(q.name)
        levels = [by_priority[p] for p in sorted(by_priority)]
    elif not deployment_ids:
        return []
    else:
        slots = _Slots(None, {})
    if deployment_ids is not None:
        conditions.append(flow_run.c.deployment_id.in_(sorted(set(deployment_ids))))
    _deployment_slots(conn, slots, pool_name, deployment_ids, lock=pg)
    claimed: list[str] = []
    for names in levels:
        level = conditions if names is None else [*conditions, _in_queues(names)]
        claimed += _claim_in_pages(conn, level, slots, worker_name, limit - len(claimed), now)
        if len(claimed) >= limit or slots.exhausted():
            break
    if not claimed:
        return []
    found = conn.execute(select(flow_run).where(flow_run.c.id.in_(claimed))).mappings()
    by_id = {r["id"]: flow_run_from_row(r) for r in found}
    return [by_id[run_id] for run_id in claimed]


def _in_queues(names: list[str]) -> ColumnElement[bool]:
    if len(names) == 1:
        return flow_run.c.work_queue_name == names[0]
    return flow_run.c.work_queue_name.in_(names)


def _claim_in_pages(
    conn: Connection,
    conditions: list[ColumnElement[bool]],
    slots: _Slots,
    worker_name: str,
    limit: int,
    now: float,
) -> list[str]:
    """Claim up to ``limit`` of the runs matching ``conditions``, oldest due first.

    One priority level at a time, ordered by scheduled time alone, so the
    claim index (pool, state, scheduled time) hands candidates over in order
    instead of the database sorting every due run at each claim.
    """
    stmt = (
        select(flow_run.c.id, flow_run.c.work_queue_name, flow_run.c.deployment_id)
        .select_from(flow_run.outerjoin(deployment, deployment.c.id == flow_run.c.deployment_id))
        .where(*conditions)
        .order_by(flow_run.c.scheduled_start_time, flow_run.c.id)
    )
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True, of=flow_run)
    page = max(limit * 4, _PAGE_MIN)
    claimed: list[str] = []
    offset = 0
    message = f"Claimed by worker {worker_name}"
    while len(claimed) < limit and not slots.exhausted():
        candidates = conn.execute(stmt.limit(page).offset(offset)).all()
        for run_id, queue, deployment_id in candidates:
            if len(claimed) >= limit or slots.exhausted():
                break
            if not slots.take(queue, deployment_id):
                continue
            done = conn.execute(_CLAIM, {"b_id": run_id, "b_worker": worker_name})
            if done.rowcount == 1:
                set_run_state(conn, run_id, StateType.PENDING, "Pending", message, now)
                claimed.append(run_id)
        if len(candidates) < page:
            break
        offset += page
    return claimed


#: take one run if it is still claimable (the re-check makes a claim exclusive)
_CLAIM = (
    update(flow_run)
    .where(
        flow_run.c.id == bindparam("b_id"),
        flow_run.c.state_type == StateType.SCHEDULED.value,
        flow_run.c.state_name.in_(CLAIMABLE_NAMES),
    )
    .values(worker_name=bindparam("b_worker"))
)


def _open_queues(
    conn: Connection, pool: WorkPoolRecord, wanted: Sequence[str] | None
) -> list[WorkQueueRecord]:
    stmt = (
        select(work_queue)
        .where(work_queue.c.pool_name == pool.name)
        .order_by(work_queue.c.priority, work_queue.c.name)
    )
    all_queues = [work_queue_from_row(r) for r in conn.execute(stmt).mappings()]
    if wanted:
        known = {q.name for q in all_queues}
        for name in wanted:
            if name not in known:
                raise NotFoundError("work queue", f"{pool.name}/{name}")
    return [q for q in all_queues if not q.paused and (not wanted or q.name in wanted)]


def _pool_slots(conn: Connection, pool: WorkPoolRecord, queues: list[WorkQueueRecord]) -> _Slots:
    pool_free: int | None = None
    if pool.concurrency_limit is not None:
        active = dq.count_active_runs(conn, flow_run.c.work_pool_name, [pool.name])
        pool_free = pool.concurrency_limit - active.get(pool.name, 0)
    limited = [q for q in queues if q.concurrency_limit is not None]
    queue_free: dict[str, int | None] = {q.name: None for q in queues}
    if limited:
        stmt_counts = _count_by_queue(conn, pool.name, [q.name for q in limited])
        for q in limited:
            assert q.concurrency_limit is not None
            queue_free[q.name] = q.concurrency_limit - stmt_counts.get(q.name, 0)
    return _Slots(pool_free, queue_free)


def _count_by_queue(conn: Connection, pool_name: str, names: list[str]) -> dict[str, int]:
    stmt = (
        select(flow_run.c.work_queue_name, func.count())
        .where(
            flow_run.c.work_pool_name == pool_name,
            flow_run.c.work_queue_name.in_(names),
            flow_run.c.state_type.in_(dq.ACTIVE_TYPES),
        )
        .group_by(flow_run.c.work_queue_name)
    )
    return {name: int(n) for name, n in conn.execute(stmt).all()}


def _deployment_slots(
    conn: Connection,
    slots: _Slots,
    pool_name: str | None,
    deployment_ids: Sequence[str] | None,
    *,
    lock: bool,
) -> None:
    """Fill in the free slots of deployments that have a concurrency limit or max_active_runs.

    With ``lock`` (PostgreSQL) their rows are locked first, in id order, so
    claimers of the same deployments count and claim one after the other.
    """
    limited = or_(
        deployment.c.concurrency_limit.is_not(None), deployment.c.max_active_runs.is_not(None)
    )
    stmt = select(deployment.c.id, deployment.c.concurrency_limit, deployment.c.max_active_runs)
    stmt = stmt.where(limited)
    if pool_name is not None:
        stmt = stmt.where(deployment.c.work_pool_name == pool_name)
    if deployment_ids is not None:
        stmt = stmt.where(deployment.c.id.in_(sorted(set(deployment_ids))))
    stmt = stmt.order_by(deployment.c.id)
    if lock:
        stmt = stmt.with_for_update()
    found = conn.execute(stmt).all()
    if not found:
        return
    active = dq.count_active_runs(conn, flow_run.c.deployment_id, [r[0] for r in found])
    for dep_id, concurrency, max_active in found:
        cap = min(v for v in (concurrency, max_active) if v is not None)
        slots.deployments[dep_id] = cap - active.get(dep_id, 0)


def release_flow_runs(
    conn: Connection, run_ids: Sequence[str], *, worker_name: str, now: float, message: str
) -> list[str]:
    """Hand Pending runs claimed by ``worker_name`` back (Scheduled); the ids handed back."""
    released: list[str] = []
    for run_id in sorted(set(run_ids)):
        done = conn.execute(
            update(flow_run)
            .where(
                flow_run.c.id == run_id,
                flow_run.c.state_type == StateType.PENDING.value,
                flow_run.c.worker_name == worker_name,
            )
            .values(worker_name=None)
        )
        if done.rowcount == 1:
            set_run_state(conn, run_id, StateType.SCHEDULED, "Scheduled", message, now)
            released.append(run_id)
    return released


def requeue_orphaned_runs(conn: Connection, *, timeout: float, now: float) -> list[str]:
    """Hand back Pending runs of deployments whose claiming worker went silent.

    A run is orphaned when it has been Pending for more than ``timeout``
    seconds and no worker of its pool with the claiming worker's name has
    sent a heartbeat within ``timeout``: the worker died between claiming the
    run and starting it. The run becomes Scheduled again (with a message) for
    another worker to claim, instead of staying Pending for ever. Returns the
    ids handed back.
    """
    cutoff = now - timeout
    alive = (
        select(worker.c.id)
        .where(
            worker.c.pool_name == flow_run.c.work_pool_name,
            worker.c.name == flow_run.c.worker_name,
            worker.c.status == "ONLINE",
            worker.c.last_heartbeat >= cutoff,
        )
        .exists()
    )
    stale = (
        flow_run.c.state_type == StateType.PENDING.value,
        flow_run.c.deployment_id.is_not(None),
        flow_run.c.worker_name.is_not(None),
        flow_run.c.updated < cutoff,
    )
    found = conn.execute(
        select(flow_run.c.id, flow_run.c.worker_name).where(*stale, ~alive).order_by(flow_run.c.id)
    ).all()
    requeued: list[str] = []
    for run_id, worker_name in found:
        done = conn.execute(
            update(flow_run).where(flow_run.c.id == run_id, *stale).values(worker_name=None)
        )
        if done.rowcount == 1:
            message = (
                f"Handed back: worker {worker_name} claimed it but went silent before starting it"
            )
            set_run_state(conn, run_id, StateType.SCHEDULED, "Scheduled", message, now)
            requeued.append(run_id)
    return requeued
