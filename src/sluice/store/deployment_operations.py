"""The implementations of the operations on deployments, pools, queues, workers,
claims and the scheduler (:mod:`sluice.operations.deployments`).

Each runs in one transaction (a write transaction, ``BEGIN IMMEDIATE`` on
SQLite, for those that change anything), so what one created or claimed is
committed when it answers. The settings they are given are checked here
(:mod:`sluice.store.deployment_checks`), for embedded callers and the
server's clients alike; the SQL is in :mod:`sluice.store.deployment_writes`,
:mod:`sluice.store.deployment_queries`, :mod:`sluice.store.claims` and
:mod:`sluice.store.schedule_writes`.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import socket

from sqlalchemy import Connection

from sluice.errors import InvalidInputError, NotFoundError
from sluice.operations.deployments import (
    MAX_CLAIM,
    RELEASED_MESSAGE,
    ClaimFlowRuns,
    CreateFlowRunFromDeployment,
    CreateScheduledRuns,
    CreateWorkPool,
    CreateWorkQueue,
    DeleteDeployment,
    DeleteWorkPool,
    DeleteWorkQueue,
    ListDeploymentRuns,
    ListDeployments,
    ListWorkers,
    ListWorkPools,
    ListWorkQueues,
    MarkLateRuns,
    ReadDeployment,
    ReadWorkPool,
    ReadWorkQueue,
    ReleaseFlowRuns,
    RequeueOrphanedRuns,
    ResumeFlowRun,
    SkipRunsOverMaxActive,
    UpdateDeployment,
    UpdateWorkPool,
    UpdateWorkQueue,
    UpsertDeployment,
    WorkerHeartbeat,
)
from sluice.schemas import (
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.settings import Settings
from sluice.states import utcnow
from sluice.store import claims, resume_writes, schedule_writes
from sluice.store import deployment_queries as dq
from sluice.store import deployment_writes as dw
from sluice.store.deployment_checks import (
    check_deployment,
    check_limits,
    check_name,
    new_deployment_run,
    normalized_schedules,
    tick_runs,
)
from sluice.store.implementations import implements
from sluice.store.run_operations import check_seconds

#: the statuses a worker may report itself in
WORKER_STATUSES = ("ONLINE", "STOPPED")


def _moment(now: _dt.datetime | None) -> _dt.datetime:
    return utcnow() if now is None else now.astimezone(_dt.timezone.utc)


# -- deployments --------------------------------------------------------------------------


@implements(UpsertDeployment, writes=True)
def upsert_deployment(conn: Connection, op: UpsertDeployment) -> DeploymentRecord:
    deployment = op.deployment
    check_deployment(deployment)
    canonical = dataclasses.replace(
        deployment, schedules=normalized_schedules(deployment.schedules)
    )
    return dw.upsert_deployment(conn, canonical, utcnow().timestamp())


@implements(ReadDeployment)
def read_deployment(conn: Connection, op: ReadDeployment) -> DeploymentRecord:
    return dq.get_deployment(conn, op.key)


@implements(ListDeployments)
def list_deployments(conn: Connection, op: ListDeployments) -> list[DeploymentRecord]:
    if op.id is not None:
        try:
            one = dq.get_deployment(conn, op.id)
        except NotFoundError:
            return []
        return [one] if one.id == op.id else []  # not one named by a FLOW/NAME
    limit = op.limit + op.offset if op.limit > 0 else 0
    found = dq.list_deployments(
        conn, flow_name=op.flow_name, work_pool_name=op.work_pool_name, limit=limit
    )
    return found[op.offset :]


@implements(UpdateDeployment, writes=True)
def update_deployment(conn: Connection, op: UpdateDeployment) -> DeploymentRecord:
    changes = op.changes
    check_limits(changes)
    if "schedules" in changes:
        changes = {**changes, "schedules": normalized_schedules(changes["schedules"])}
    return dw.update_deployment(conn, op.key, changes, utcnow().timestamp())


@implements(DeleteDeployment, writes=True)
def delete_deployment(conn: Connection, op: DeleteDeployment) -> None:
    dw.delete_deployment(conn, op.key, utcnow().timestamp())


@implements(ListDeploymentRuns)
def list_deployment_runs(conn: Connection, op: ListDeploymentRuns) -> list[FlowRunRecord]:
    dep = dq.get_deployment(conn, op.key)
    return dq.list_deployment_runs(
        conn,
        dep.id,
        state_types=op.state_types,
        scheduled_after=op.scheduled_after,
        scheduled_before=op.scheduled_before,
        limit=op.limit,
    )


# -- runs of deployments ------------------------------------------------------------------


@implements(CreateFlowRunFromDeployment, writes=True)
def create_flow_run_from_deployment(
    conn: Connection, op: CreateFlowRunFromDeployment
) -> FlowRunRecord:
    dep = dq.get_deployment(conn, op.key)
    run = new_deployment_run(
        dep,
        op.parameters,
        now=utcnow(),
        idempotency_key=op.idempotency_key,
        scheduled_start_time=op.scheduled_start_time,
        tags=op.tags,
        parent_flow_run_id=op.parent_flow_run_id,
        parent_task_run_id=op.parent_task_run_id,
        name=op.name,
        job_variables=op.job_variables,
    )
    return dw.insert_deployment_run(conn, run)[0]


@implements(CreateScheduledRuns, writes=True)
def create_scheduled_runs(conn: Connection, op: CreateScheduledRuns) -> int:
    dep = dq.get_deployment(conn, op.key)
    now = utcnow()
    runs: list[FlowRunRecord] = []
    messages: list[str | None] = []
    for at in op.times:
        made = tick_runs(dep, at, now, op.tags)
        runs.extend(made)
        messages.extend([None] * len(made))
    for tick in op.skipped:
        made = tick_runs(dep, tick.at, now, op.tags, skipped=tick.reason)
        runs.extend(made)
        messages.extend([tick.reason] * len(made))
    created = dw.insert_deployment_runs(conn, runs, messages)
    if op.planned_until is not None:
        dw.set_planned_until(conn, dep.id, op.planned_until.timestamp())
    return created


@implements(ClaimFlowRuns, writes=True)
def claim_flow_runs(conn: Connection, op: ClaimFlowRuns) -> list[FlowRunRecord]:
    if type(op.limit) is not int or not 1 <= op.limit <= MAX_CLAIM:
        raise InvalidInputError(
            f"limit must be between 1 and {MAX_CLAIM}, not {op.limit}", field="limit"
        )
    return claims.claim_flow_runs(
        conn,
        op.pool_name,
        worker_name=op.worker_name,
        limit=op.limit,
        now=_moment(op.now).timestamp(),
        queues=op.queues,
        deployment_ids=op.deployment_ids,
    )


@implements(ReleaseFlowRuns, writes=True)
def release_flow_runs(conn: Connection, op: ReleaseFlowRuns) -> list[str]:
    return claims.release_flow_runs(
        conn,
        op.run_ids,
        worker_name=op.worker_name,
        now=utcnow().timestamp(),
        message=op.message or RELEASED_MESSAGE,
    )


@implements(ResumeFlowRun, writes=True)
def resume_flow_run(conn: Connection, op: ResumeFlowRun) -> FlowRunRecord:
    return resume_writes.queue_resume(conn, op.flow_run_id, op.from_task, utcnow().timestamp())


# -- the scheduler's steps ----------------------------------------------------------------


@implements(RequeueOrphanedRuns, writes=True)
def requeue_orphaned_runs(conn: Connection, op: RequeueOrphanedRuns) -> list[str]:
    check_seconds("timeout", op.timeout)
    at = _moment(op.now).timestamp()
    return claims.requeue_orphaned_runs(conn, timeout=op.timeout, now=at)


@implements(MarkLateRuns, writes=True)
def mark_late_runs(conn: Connection, op: MarkLateRuns) -> list[str]:
    check_seconds("grace", op.grace)
    return schedule_writes.mark_late_runs(conn, now=_moment(op.now).timestamp(), grace=op.grace)


@implements(SkipRunsOverMaxActive, writes=True)
def skip_runs_over_max_active(conn: Connection, op: SkipRunsOverMaxActive) -> list[str]:
    return schedule_writes.skip_runs_over_max_active(conn, now=_moment(op.now).timestamp())


# -- work pools and queues ----------------------------------------------------------------


@implements(CreateWorkPool, writes=True)
def create_work_pool(conn: Connection, op: CreateWorkPool) -> WorkPoolRecord:
    pool = op.pool
    check_name("a work pool's name", pool.name)
    if pool.type != "process":
        raise InvalidInputError(f"unknown work pool type {pool.type!r}; known: process")
    check_limits({"concurrency_limit": pool.concurrency_limit})
    return dw.create_work_pool(conn, pool)


@implements(ReadWorkPool)
def read_work_pool(conn: Connection, op: ReadWorkPool) -> WorkPoolRecord:
    return dq.get_work_pool(conn, op.name)


@implements(ListWorkPools)
def list_work_pools(conn: Connection, op: ListWorkPools) -> list[WorkPoolRecord]:
    return dq.list_work_pools(conn)


@implements(UpdateWorkPool, writes=True)
def update_work_pool(conn: Connection, op: UpdateWorkPool) -> WorkPoolRecord:
    check_limits(op.changes)
    return dw.update_work_pool(conn, op.name, op.changes, utcnow().timestamp())


@implements(DeleteWorkPool, writes=True)
def delete_work_pool(conn: Connection, op: DeleteWorkPool) -> None:
    dw.delete_work_pool(conn, op.name)


@implements(CreateWorkQueue, writes=True)
def create_work_queue(conn: Connection, op: CreateWorkQueue) -> WorkQueueRecord:
    queue = op.queue
    check_name("a work queue's name", queue.name)
    check_limits({"concurrency_limit": queue.concurrency_limit, "priority": queue.priority})
    return dw.create_work_queue(conn, queue)


@implements(ReadWorkQueue)
def read_work_queue(conn: Connection, op: ReadWorkQueue) -> WorkQueueRecord:
    return dq.get_work_queue(conn, op.pool_name, op.name)


@implements(ListWorkQueues)
def list_work_queues(conn: Connection, op: ListWorkQueues) -> list[WorkQueueRecord]:
    return dq.list_work_queues(conn, op.pool_name)


@implements(UpdateWorkQueue, writes=True)
def update_work_queue(conn: Connection, op: UpdateWorkQueue) -> WorkQueueRecord:
    check_limits(op.changes)
    return dw.update_work_queue(conn, op.pool_name, op.name, op.changes, utcnow().timestamp())


@implements(DeleteWorkQueue, writes=True)
def delete_work_queue(conn: Connection, op: DeleteWorkQueue) -> None:
    dw.delete_work_queue(conn, op.pool_name, op.name)


# -- workers ------------------------------------------------------------------------------


@implements(WorkerHeartbeat, writes=True)
def worker_heartbeat(conn: Connection, op: WorkerHeartbeat) -> WorkerRecord:
    if op.status not in WORKER_STATUSES:
        raise InvalidInputError(
            f"a worker's status is ONLINE or STOPPED, not {op.status!r}", field="status"
        )
    at = _moment(op.now)
    dq.get_work_pool(conn, op.pool_name)
    record = WorkerRecord(
        op.pool_name,
        op.name,
        last_heartbeat=at,
        status=op.status,
        hostname=op.hostname or socket.gethostname(),
        pid=op.pid,
        created=at,
    )
    return dw.worker_heartbeat(conn, record)


@implements(ListWorkers, needs_settings=True)
def list_workers(conn: Connection, op: ListWorkers, settings: Settings) -> list[WorkerRecord]:
    dq.get_work_pool(conn, op.pool_name)
    return dq.list_workers(conn, op.pool_name, settings.heartbeat_timeout)
