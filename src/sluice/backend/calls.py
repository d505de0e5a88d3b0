"""Named methods for the operations everything uses, each one line over ``execute``.

``backend.read_flow_run(run_id)`` is ``backend.execute(ReadFlowRun(run_id))``:
the request type (:mod:`sluice.operations`) documents the operation, and its
one implementation runs it; these methods only spell the arguments the way
callers have always written them. A new operation needs none: call
``execute`` with its request.
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.operations.base import Operation
from sluice.schemas import (
    DeploymentRecord,
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import StateType
from sluice.utilities.lazy import LazyModule

if TYPE_CHECKING:
    from sluice.operations import deployments as dep_ops
    from sluice.operations import runs as run_ops
else:
    # Imported at the first operation: a process that only records runs needs none.
    dep_ops = LazyModule("sluice.operations.deployments")
    run_ops = LazyModule("sluice.operations.runs")

R = TypeVar("R")


class NamedOperations(abc.ABC):
    """The named operations of :class:`~sluice.backend.protocol.Backend` (see the
    request types for what each does and raises)."""

    @abc.abstractmethod
    def execute(self, op: Operation[R]) -> R:
        """Run ``op``; its answer (see :meth:`sluice.backend.protocol.Backend.execute`)."""

    # -- flows and runs (sluice.operations.runs) ------------------------------------------
    def read_flow(self, name: str) -> FlowRecord:
        """See :class:`~sluice.operations.run_ops.ReadFlow`."""
        return self.execute(run_ops.ReadFlow(name))

    def list_flows(self, limit: int = 200) -> list[FlowRecord]:
        """See :class:`~sluice.operations.run_ops.ListFlows`."""
        return self.execute(run_ops.ListFlows(limit))

    def read_flow_run(self, run_id: str) -> FlowRunRecord:
        """See :class:`~sluice.operations.run_ops.ReadFlowRun`."""
        return self.execute(run_ops.ReadFlowRun(run_id))

    def list_flow_runs(self, flt: FlowRunFilter) -> list[FlowRunRecord]:
        """See :class:`~sluice.operations.run_ops.ListFlowRuns`."""
        return self.execute(run_ops.ListFlowRuns.of(flt))

    def count_flow_runs(self, flt: FlowRunFilter) -> int:
        """See :class:`~sluice.operations.run_ops.CountFlowRuns`."""
        return self.execute(run_ops.CountFlowRuns.of(flt))

    def read_task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        """See :class:`~sluice.operations.run_ops.ReadTaskRuns`."""
        return self.execute(run_ops.ReadTaskRuns(flow_run_id))

    def read_task_run(self, task_run_id: str) -> TaskRunRecord:
        """See :class:`~sluice.operations.run_ops.ReadTaskRun`."""
        return self.execute(run_ops.ReadTaskRun(task_run_id))

    def read_states(self, run_id: str) -> list[StateRecord]:
        """See :class:`~sluice.operations.run_ops.ReadStates`."""
        return self.execute(run_ops.ReadStates(run_id))

    def find_cached_task_run(self, cache_key: str, now: _dt.datetime) -> TaskRunRecord | None:
        """See :class:`~sluice.operations.run_ops.FindCachedTaskRun`."""
        return self.execute(run_ops.FindCachedTaskRun(cache_key, now))

    def read_journal(self, flow_run_id: str) -> list[TaskRunRecord]:
        """See :class:`~sluice.operations.run_ops.ReadJournal`."""
        return self.execute(run_ops.ReadJournal(flow_run_id))

    def read_logs(
        self,
        flow_run_id: str,
        *,
        task_run_id: str | None = None,
        min_level: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """See :class:`~sluice.operations.run_ops.ReadLogs`."""
        return self.execute(run_ops.ReadLogs(flow_run_id, task_run_id, min_level, offset, limit))

    def mark_lapsed_runs_crashed(self, timeout: float) -> list[str]:
        """See :class:`~sluice.operations.run_ops.MarkLapsedRunsCrashed`."""
        return self.execute(run_ops.MarkLapsedRunsCrashed(timeout))

    def mark_gone_runs_crashed(self, runs: Sequence[FlowRunRecord]) -> list[str]:
        """Mark these Running flow runs Crashed, each only if it still runs in the
        process it recorded (see :class:`~sluice.operations.run_ops.MarkGoneRunsCrashed`);
        runs that recorded no process are left out."""
        gone = [
            run_ops.GoneProcess(r.id, r.host_id, r.pid, r.pid_started)
            for r in runs
            if r.host_id is not None and r.pid is not None and r.pid_started is not None
        ]
        return self.execute(run_ops.MarkGoneRunsCrashed(gone)) if gone else []

    def claim_attempt(self, flow_run_id: str) -> int:
        """See :class:`~sluice.operations.run_ops.ClaimAttempt`."""
        return self.execute(run_ops.ClaimAttempt(flow_run_id))

    def read_attempt(self, flow_run_id: str) -> int:
        """See :class:`~sluice.operations.run_ops.ReadAttempt`."""
        return self.execute(run_ops.ReadAttempt(flow_run_id))

    def cancel_flow_run(self, run_id: str) -> FlowRunRecord:
        """See :class:`~sluice.operations.run_ops.CancelFlowRun`."""
        return self.execute(run_ops.CancelFlowRun(run_id))

    # -- deployments (sluice.operations.deployments) --------------------------------------
    def upsert_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        """See :class:`~sluice.operations.deployments.UpsertDeployment`."""
        return self.execute(dep_ops.UpsertDeployment(deployment))

    def read_deployment(self, key: str) -> DeploymentRecord:
        """See :class:`~sluice.operations.deployments.ReadDeployment`."""
        return self.execute(dep_ops.ReadDeployment(key))

    def list_deployments(
        self, *, flow_name: str | None = None, work_pool_name: str | None = None, limit: int = 200
    ) -> list[DeploymentRecord]:
        """See :class:`~sluice.operations.deployments.ListDeployments`."""
        return self.execute(dep_ops.ListDeployments(flow_name, work_pool_name, limit=limit))

    def update_deployment(self, key: str, changes: Mapping[str, Any]) -> DeploymentRecord:
        """See :class:`~sluice.operations.deployments.UpdateDeployment`."""
        return self.execute(dep_ops.UpdateDeployment(key, dict(changes)))

    def delete_deployment(self, key: str) -> None:
        """See :class:`~sluice.operations.deployments.DeleteDeployment`."""
        self.execute(dep_ops.DeleteDeployment(key))

    def list_deployment_runs(
        self,
        key: str,
        *,
        state_types: Sequence[StateType] | None = None,
        scheduled_after: _dt.datetime | None = None,
        scheduled_before: _dt.datetime | None = None,
        limit: int = 200,
    ) -> list[FlowRunRecord]:
        """See :class:`~sluice.operations.deployments.ListDeploymentRuns`."""
        types = None if state_types is None else list(state_types)
        op = dep_ops.ListDeploymentRuns(key, types, scheduled_after, scheduled_before, limit)
        return self.execute(op)

    def create_flow_run_from_deployment(
        self,
        key: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        scheduled_start_time: _dt.datetime | None = None,
        tags: Sequence[str] | None = None,
        parent_flow_run_id: str | None = None,
        parent_task_run_id: str | None = None,
        name: str | None = None,
        job_variables: Mapping[str, Any] | None = None,
    ) -> FlowRunRecord:
        """See :class:`~sluice.operations.deployments.CreateFlowRunFromDeployment`."""
        op = dep_ops.CreateFlowRunFromDeployment(
            key,
            dict(parameters or {}),
            idempotency_key=idempotency_key,
            scheduled_start_time=scheduled_start_time,
            tags=None if tags is None else list(tags),
            parent_flow_run_id=parent_flow_run_id,
            parent_task_run_id=parent_task_run_id,
            name=name,
            job_variables=dict(job_variables or {}),
        )
        return self.execute(op)

    def create_scheduled_runs(
        self,
        key: str,
        *,
        times: Sequence[_dt.datetime],
        skipped: Sequence[tuple[_dt.datetime, str]] = (),
        planned_until: _dt.datetime | None = None,
        tags: Sequence[str] | None = None,
    ) -> int:
        """See :class:`~sluice.operations.deployments.CreateScheduledRuns`."""
        op = dep_ops.CreateScheduledRuns(
            key,
            list(times),
            [dep_ops.SkippedTick(at, why) for at, why in skipped],
            planned_until,
            None if tags is None else list(tags),
        )
        return self.execute(op)

    def claim_flow_runs(
        self,
        pool_name: str | None,
        *,
        worker_name: str,
        limit: int,
        now: _dt.datetime | None = None,
        queues: Sequence[str] | None = None,
        deployment_ids: Sequence[str] | None = None,
    ) -> list[FlowRunRecord]:
        """Up to ``limit`` due runs claimed for ``worker_name`` (none for a limit <= 0;
        at most :data:`~sluice.operations.deployments.MAX_CLAIM` per call): see
        :class:`~sluice.operations.deployments.ClaimFlowRuns`."""
        if limit <= 0:
            return []
        op = dep_ops.ClaimFlowRuns(
            worker_name,
            min(limit, dep_ops.MAX_CLAIM),
            pool_name,
            None if queues is None else list(queues),
            None if deployment_ids is None else list(deployment_ids),
            now,
        )
        return self.execute(op)

    def release_flow_runs(
        self, run_ids: Sequence[str], *, worker_name: str, message: str | None = None
    ) -> list[str]:
        """See :class:`~sluice.operations.deployments.ReleaseFlowRuns`."""
        return self.execute(dep_ops.ReleaseFlowRuns(list(run_ids), worker_name, message))

    def resume_flow_run(self, run_id: str, from_task: str | None = None) -> FlowRunRecord:
        """See :class:`~sluice.operations.deployments.ResumeFlowRun`."""
        return self.execute(dep_ops.ResumeFlowRun(run_id, from_task))

    def requeue_orphaned_runs(
        self, *, timeout: float, now: _dt.datetime | None = None
    ) -> list[str]:
        """See :class:`~sluice.operations.deployments.RequeueOrphanedRuns`."""
        return self.execute(dep_ops.RequeueOrphanedRuns(timeout, now))

    def mark_late_runs(self, *, grace: float, now: _dt.datetime | None = None) -> list[str]:
        """See :class:`~sluice.operations.deployments.MarkLateRuns`."""
        return self.execute(dep_ops.MarkLateRuns(grace, now))

    def skip_runs_over_max_active(self, *, now: _dt.datetime | None = None) -> list[str]:
        """See :class:`~sluice.operations.deployments.SkipRunsOverMaxActive`."""
        return self.execute(dep_ops.SkipRunsOverMaxActive(now))

    # -- work pools, queues, workers -------------------------------------------------------
    def create_work_pool(self, pool: WorkPoolRecord) -> WorkPoolRecord:
        """See :class:`~sluice.operations.deployments.CreateWorkPool`."""
        return self.execute(dep_ops.CreateWorkPool(pool))

    def read_work_pool(self, name: str) -> WorkPoolRecord:
        """See :class:`~sluice.operations.deployments.ReadWorkPool`."""
        return self.execute(dep_ops.ReadWorkPool(name))

    def list_work_pools(self) -> list[WorkPoolRecord]:
        """See :class:`~sluice.operations.deployments.ListWorkPools`."""
        return self.execute(dep_ops.ListWorkPools())

    def update_work_pool(self, name: str, changes: Mapping[str, Any]) -> WorkPoolRecord:
        """See :class:`~sluice.operations.deployments.UpdateWorkPool`."""
        return self.execute(dep_ops.UpdateWorkPool(name, dict(changes)))

    def delete_work_pool(self, name: str) -> None:
        """See :class:`~sluice.operations.deployments.DeleteWorkPool`."""
        self.execute(dep_ops.DeleteWorkPool(name))

    def create_work_queue(self, queue: WorkQueueRecord) -> WorkQueueRecord:
        """See :class:`~sluice.operations.deployments.CreateWorkQueue`."""
        return self.execute(dep_ops.CreateWorkQueue(queue))

    def read_work_queue(self, pool_name: str, name: str) -> WorkQueueRecord:
        """See :class:`~sluice.operations.deployments.ReadWorkQueue`."""
        return self.execute(dep_ops.ReadWorkQueue(pool_name, name))

    def list_work_queues(self, pool_name: str) -> list[WorkQueueRecord]:
        """See :class:`~sluice.operations.deployments.ListWorkQueues`."""
        return self.execute(dep_ops.ListWorkQueues(pool_name))

    def update_work_queue(
        self, pool_name: str, name: str, changes: Mapping[str, Any]
    ) -> WorkQueueRecord:
        """See :class:`~sluice.operations.deployments.UpdateWorkQueue`."""
        return self.execute(dep_ops.UpdateWorkQueue(pool_name, name, dict(changes)))

    def delete_work_queue(self, pool_name: str, name: str) -> None:
        """See :class:`~sluice.operations.deployments.DeleteWorkQueue`."""
        self.execute(dep_ops.DeleteWorkQueue(pool_name, name))

    def worker_heartbeat(
        self,
        pool_name: str,
        name: str,
        *,
        status: str = "ONLINE",
        hostname: str | None = None,
        pid: int | None = None,
        now: _dt.datetime | None = None,
    ) -> WorkerRecord:
        """See :class:`~sluice.operations.deployments.WorkerHeartbeat` (``hostname``
        None: this machine's)."""
        if hostname is None:
            op = dep_ops.WorkerHeartbeat(pool_name, name, status, pid=pid, now=now)
        else:
            op = dep_ops.WorkerHeartbeat(pool_name, name, status, hostname, pid, now)
        return self.execute(op)

    def list_workers(self, pool_name: str) -> list[WorkerRecord]:
        """See :class:`~sluice.operations.deployments.ListWorkers`."""
        return self.execute(dep_ops.ListWorkers(pool_name))


__all__ = ["NamedOperations", "dep_ops", "run_ops"]
