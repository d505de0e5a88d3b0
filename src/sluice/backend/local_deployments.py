"""LocalBackend's half of :class:`~sluice.backend.deployments_protocol.DeploymentBackend`.

A mixin so that ``local.py`` stays about run records. Every method is one
synchronous write transaction (``BEGIN IMMEDIATE`` on SQLite, retried while
the database is busy) or one read; none goes through the write-behind
batcher, so what a method created or claimed is committed when it returns.
The SQL lives in :mod:`sluice.store.deployment_writes`,
:mod:`sluice.store.deployment_queries`, :mod:`sluice.store.claims` and
:mod:`sluice.store.schedule_writes`, imported on first use (they import
SQLAlchemy).
"""

from __future__ import annotations

import datetime as _dt
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from sluice.backend.deployment_checks import (
    check_deployment,
    check_limits,
    check_name,
    new_deployment_run,
    normalized_schedules,
    tick_runs,
)
from sluice.backend.deployments_protocol import RELEASED_MESSAGE
from sluice.errors import InvalidInputError
from sluice.schemas import (
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import StateType, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from sluice.backend.protocol import Backend
    from sluice.settings import Settings

T = TypeVar("T")


def _moment(now: _dt.datetime | None) -> _dt.datetime:
    return utcnow() if now is None else now.astimezone(_dt.timezone.utc)


class LocalDeploymentsMixin:
    """DeploymentBackend methods for :class:`~sluice.backend.local.LocalBackend`."""

    if TYPE_CHECKING:
        _lock_timeout: float
        _label: str
        settings: Settings

        @property
        def engine(self) -> Engine: ...

        def _read(self, query: Callable[[Connection], T]) -> T: ...

        def flush(self) -> None: ...

    def _write_now(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one committed write transaction, retried while busy."""
        from sluice.store.database import run_write

        return run_write(self.engine, work, lock_timeout=self._lock_timeout, label=self._label)

    # -- deployments ------------------------------------------------------------------

    def upsert_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        """Create a deployment, or replace the one with the same flow and name."""
        from sluice.store import deployment_writes as dw

        check_deployment(deployment)
        now = utcnow().timestamp()
        return self._write_now(lambda conn: dw.upsert_deployment(conn, deployment, now))

    def read_deployment(self, key: str) -> DeploymentRecord:
        """A deployment by id or ``FLOW/NAME``. Raises NotFoundError."""
        from sluice.store import deployment_queries as dq

        return self._read(lambda conn: dq.get_deployment(conn, key))

    def list_deployments(
        self,
        *,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        limit: int = 200,
    ) -> list[DeploymentRecord]:
        """Deployments by flow name then name (``limit <= 0``: all)."""
        from sluice.store import deployment_queries as dq

        return self._read(
            lambda conn: dq.list_deployments(
                conn, flow_name=flow_name, work_pool_name=work_pool_name, limit=limit
            )
        )

    def update_deployment(self, key: str, changes: Mapping[str, Any]) -> DeploymentRecord:
        """Change some settings of a deployment (see the protocol)."""
        from sluice.store import deployment_writes as dw

        check_limits(changes)
        if "schedules" in changes:
            changes = {**changes, "schedules": normalized_schedules(changes["schedules"])}
        now = utcnow().timestamp()
        return self._write_now(lambda conn: dw.update_deployment(conn, key, changes, now))

    def delete_deployment(self, key: str) -> None:
        """Delete a deployment; its runs that have not started become Cancelled."""
        from sluice.store import deployment_writes as dw

        now = utcnow().timestamp()
        self._write_now(lambda conn: dw.delete_deployment(conn, key, now))

    def list_deployment_runs(
        self,
        key: str,
        *,
        state_types: Sequence[StateType] | None = None,
        scheduled_after: _dt.datetime | None = None,
        scheduled_before: _dt.datetime | None = None,
        limit: int = 200,
    ) -> list[FlowRunRecord]:
        """Runs of a deployment by scheduled start time."""
        from sluice.store import deployment_queries as dq

        def query(conn: Connection) -> list[FlowRunRecord]:
            dep = dq.get_deployment(conn, key)
            return dq.list_deployment_runs(
                conn,
                dep.id,
                state_types=state_types,
                scheduled_after=scheduled_after,
                scheduled_before=scheduled_before,
                limit=limit,
            )

        return self._read(query)

    # -- work pools and queues ----------------------------------------------------------

    def create_work_pool(self, pool: WorkPoolRecord) -> WorkPoolRecord:
        """Create a pool with its ``default`` queue. Raises ConflictError if the name is taken."""
        from sluice.store import deployment_writes as dw

        check_name("a work pool's name", pool.name)
        if pool.type != "process":
            raise InvalidInputError(f"unknown work pool type {pool.type!r}; known: process")
        check_limits({"concurrency_limit": pool.concurrency_limit})
        return self._write_now(lambda conn: dw.create_work_pool(conn, pool))

    def read_work_pool(self, name: str) -> WorkPoolRecord:
        """A pool by name. Raises NotFoundError."""
        from sluice.store import deployment_queries as dq

        return self._read(lambda conn: dq.get_work_pool(conn, name))

    def list_work_pools(self) -> list[WorkPoolRecord]:
        """Every pool, by name."""
        from sluice.store import deployment_queries as dq

        return self._read(dq.list_work_pools)

    def update_work_pool(self, name: str, changes: Mapping[str, Any]) -> WorkPoolRecord:
        """Change some of ``description``, ``concurrency_limit``, ``paused``."""
        from sluice.store import deployment_writes as dw

        check_limits(changes)
        now = utcnow().timestamp()
        return self._write_now(lambda conn: dw.update_work_pool(conn, name, changes, now))

    def delete_work_pool(self, name: str) -> None:
        """Delete a pool, its queues and workers (ConflictError while deployments use it)."""
        from sluice.store import deployment_writes as dw

        self._write_now(lambda conn: dw.delete_work_pool(conn, name))

    def create_work_queue(self, queue: WorkQueueRecord) -> WorkQueueRecord:
        """Create a queue in an existing pool."""
        from sluice.store import deployment_writes as dw

        check_name("a work queue's name", queue.name)
        check_limits({"concurrency_limit": queue.concurrency_limit, "priority": queue.priority})
        return self._write_now(lambda conn: dw.create_work_queue(conn, queue))

    def read_work_queue(self, pool_name: str, name: str) -> WorkQueueRecord:
        """A queue of a pool. Raises NotFoundError."""
        from sluice.store import deployment_queries as dq

        return self._read(lambda conn: dq.get_work_queue(conn, pool_name, name))

    def list_work_queues(self, pool_name: str) -> list[WorkQueueRecord]:
        """The queues of a pool by priority, then name."""
        from sluice.store import deployment_queries as dq

        return self._read(lambda conn: dq.list_work_queues(conn, pool_name))

    def update_work_queue(
        self, pool_name: str, name: str, changes: Mapping[str, Any]
    ) -> WorkQueueRecord:
        """Change some of ``priority``, ``description``, ``concurrency_limit``, ``paused``."""
        from sluice.store import deployment_writes as dw

        check_limits(changes)
        now = utcnow().timestamp()
        return self._write_now(
            lambda conn: dw.update_work_queue(conn, pool_name, name, changes, now)
        )

    def delete_work_queue(self, pool_name: str, name: str) -> None:
        """Delete a queue (not ``default``, nor one deployments use)."""
        from sluice.store import deployment_writes as dw

        self._write_now(lambda conn: dw.delete_work_queue(conn, pool_name, name))

    # -- runs of deployments --------------------------------------------------------------

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
        """Create a Scheduled run of a deployment (see the protocol)."""
        from sluice.store import deployment_queries as dq
        from sluice.store import deployment_writes as dw

        now = utcnow()

        def work(conn: Connection) -> FlowRunRecord:
            dep = dq.get_deployment(conn, key)
            run = new_deployment_run(
                dep,
                parameters,
                now=now,
                idempotency_key=idempotency_key,
                scheduled_start_time=scheduled_start_time,
                tags=tags,
                parent_flow_run_id=parent_flow_run_id,
                parent_task_run_id=parent_task_run_id,
                name=name,
                job_variables=job_variables,
            )
            return dw.insert_deployment_run(conn, run)[0]

        return self._write_now(work)

    def create_scheduled_runs(
        self,
        key: str,
        *,
        times: Sequence[_dt.datetime],
        skipped: Sequence[tuple[_dt.datetime, str]] = (),
        planned_until: _dt.datetime | None = None,
        tags: Sequence[str] | None = None,
    ) -> int:
        """Create the runs of schedule ticks (or a backfill); how many were new."""
        from sluice.store import deployment_queries as dq
        from sluice.store import deployment_writes as dw

        now = utcnow()

        def work(conn: Connection) -> int:
            dep = dq.get_deployment(conn, key)
            runs: list[FlowRunRecord] = []
            messages: list[str | None] = []
            for at in times:
                made = tick_runs(dep, at, now, tags)
                runs.extend(made)
                messages.extend([None] * len(made))
            for at, why in skipped:
                made = tick_runs(dep, at, now, tags, skipped=why)
                runs.extend(made)
                messages.extend([why] * len(made))
            created = dw.insert_deployment_runs(conn, runs, messages)
            if planned_until is not None:
                dw.set_planned_until(conn, dep.id, planned_until.timestamp())
            return created

        return self._write_now(work)

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
        """Atomically move up to ``limit`` due runs to Pending for ``worker_name``."""
        from sluice.store import claims

        at = _moment(now).timestamp()
        return self._write_now(
            lambda conn: claims.claim_flow_runs(
                conn,
                pool_name,
                worker_name=worker_name,
                limit=limit,
                now=at,
                queues=queues,
                deployment_ids=deployment_ids,
            )
        )

    def release_flow_runs(
        self,
        run_ids: Sequence[str],
        *,
        worker_name: str,
        message: str = RELEASED_MESSAGE,
    ) -> list[str]:
        """Hand back Pending runs this worker claimed but did not start."""
        from sluice.store import claims

        at = utcnow().timestamp()
        return self._write_now(
            lambda conn: claims.release_flow_runs(
                conn, run_ids, worker_name=worker_name, now=at, message=message
            )
        )

    def cancel_flow_run(self, run_id: str, now: _dt.datetime | None = None) -> FlowRunRecord:
        """Cancelled at once if never started, else Cancelling (the orchestration rules decide)."""
        from sluice.backend.transitions import cancel_flow_run

        return cancel_flow_run(cast("Backend", self), run_id, now or utcnow())

    def resume_flow_run(self, run_id: str, from_task: str | None = None) -> FlowRunRecord:
        """Queue a Failed/Crashed/Cancelled run of a deployment to resume (AwaitingResume)."""
        from sluice.store import resume_writes

        self.flush()  # the run's own task runs, recorded by this process, are checked
        at = utcnow().timestamp()
        return self._write_now(lambda conn: resume_writes.queue_resume(conn, run_id, from_task, at))

    def requeue_orphaned_runs(
        self, *, timeout: float, now: _dt.datetime | None = None
    ) -> list[str]:
        """Hand back Pending runs whose claiming worker went silent for ``timeout`` s."""
        from sluice.store import claims

        at = _moment(now).timestamp()
        return self._write_now(
            lambda conn: claims.requeue_orphaned_runs(conn, timeout=timeout, now=at)
        )

    def mark_late_runs(self, *, grace: float, now: _dt.datetime | None = None) -> list[str]:
        """Rename Scheduled runs of deployments not started within ``grace`` s to Late."""
        from sluice.store import schedule_writes

        at = _moment(now).timestamp()
        return self._write_now(
            lambda conn: schedule_writes.mark_late_runs(conn, now=at, grace=grace)
        )

    def skip_runs_over_max_active(self, *, now: _dt.datetime | None = None) -> list[str]:
        """Record due schedule runs beyond ``max_active_runs`` as Skipped (catchup off)."""
        from sluice.store import schedule_writes

        at = _moment(now).timestamp()
        return self._write_now(lambda conn: schedule_writes.skip_runs_over_max_active(conn, now=at))

    # -- workers --------------------------------------------------------------------------

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
        """Record that a worker of a pool is alive (or stopped)."""
        from sluice.store import deployment_queries as dq
        from sluice.store import deployment_writes as dw

        if status not in ("ONLINE", "STOPPED"):
            raise InvalidInputError(f"a worker's status is ONLINE or STOPPED, not {status!r}")
        at = _moment(now)
        rec = WorkerRecord(
            pool_name,
            name,
            last_heartbeat=at,
            status=status,
            hostname=hostname or socket.gethostname(),
            pid=pid,
            created=at,
        )

        def work(conn: Connection) -> WorkerRecord:
            dq.get_work_pool(conn, pool_name)
            return dw.worker_heartbeat(conn, rec)

        return self._write_now(work)

    def list_workers(self, pool_name: str) -> list[WorkerRecord]:
        """The workers of a pool, most recently heard from first."""
        from sluice.store import deployment_queries as dq

        def query(conn: Connection) -> list[WorkerRecord]:
            dq.get_work_pool(conn, pool_name)
            return dq.list_workers(conn, pool_name, self.settings.heartbeat_timeout)

        return self._read(query)


__all__ = ["LocalDeploymentsMixin", "check_deployment", "check_limits", "new_deployment_run"]
