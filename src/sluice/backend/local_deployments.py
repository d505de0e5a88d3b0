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

import dataclasses
import datetime as _dt
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.backend.deployments_protocol import RELEASED_MESSAGE
from sluice.errors import ConflictError
from sluice.schemas import (
    AWAITING_RESUME_STATE,
    SKIPPED_STATE,
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
    new_id,
    scheduled_key,
)
from sluice.states import RESUMABLE_TYPES, StateType, utcnow

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

T = TypeVar("T")


def _moment(now: _dt.datetime | None) -> _dt.datetime:
    return utcnow() if now is None else now.astimezone(_dt.timezone.utc)


def check_deployment(rec: DeploymentRecord) -> None:
    """Refuse a deployment that could never be found or run.

    Raises:
        ValueError: a bad name, entrypoint or limit (one line).
        ParameterValidationError: default parameters that do not fit the schema
            (missing required ones count only for a deployment with schedules).
    """
    for label, value in (("name", rec.name), ("flow name", rec.flow_name)):
        if not value or "/" in value or value != value.strip():
            raise ValueError(f"a deployment's {label} must be non-empty, without '/': {value!r}")
    if not rec.entrypoint or ":" not in rec.entrypoint:
        raise ValueError(
            f"a deployment's entrypoint is 'path/file.py:function' or 'module:function', "
            f"not {rec.entrypoint!r}"
        )
    if not rec.work_pool_name or not rec.work_queue_name:
        raise ValueError("a deployment needs a work pool and queue name")
    check_limits(
        {
            "description": rec.description,
            "version": rec.version,
            "working_dir": rec.working_dir,
            "tags": rec.tags,
            "parameters": rec.parameters,
            "concurrency_limit": rec.concurrency_limit,
            "max_active_runs": rec.max_active_runs,
            "paused": rec.paused,
            "catchup": rec.catchup,
        }
    )
    from sluice.parameter_schemas import check_parameters, check_schema_shape

    check_schema_shape(rec.parameter_schema)
    # Scheduled runs take the defaults alone, so they must be complete then.
    check_parameters(
        rec.flow_name, rec.parameter_schema, rec.parameters, complete=bool(rec.schedules)
    )


_TEXT_FIELDS = ("description", "version", "working_dir")


def check_limits(changes: Mapping[str, Any]) -> None:
    """Check the types of settings a caller gives (one-line ValueErrors).

    Limits are None (no limit) or a whole number >= 0; priorities whole
    numbers; flags true or false; texts text or None; tags a list of text;
    parameters a mapping.
    """
    for key in _TEXT_FIELDS:
        if key in changes and changes[key] is not None and type(changes[key]) is not str:
            raise ValueError(f"{key} must be text or null, not {changes[key]!r}")
    if "tags" in changes:
        tags = changes["tags"]
        if not isinstance(tags, (list, tuple)) or any(type(t) is not str for t in tags):
            raise ValueError(f"tags must be a list of text, not {tags!r}")
    if "parameters" in changes and not isinstance(changes["parameters"], dict):
        raise ValueError(f"parameters must be a mapping, not {changes['parameters']!r}")
    for key in ("concurrency_limit", "max_active_runs"):
        value = changes.get(key)
        if value is not None and (type(value) is not int or not 0 <= value < 2**31):
            raise ValueError(f"{key} must be a whole number >= 0 (or null: none), not {value!r}")
    if "priority" in changes and (
        type(changes["priority"]) is not int or abs(changes["priority"]) >= 2**31
    ):
        raise ValueError(f"priority must be a whole number, not {changes['priority']!r}")
    for key in ("paused", "catchup"):
        if key in changes and type(changes[key]) is not bool:
            raise ValueError(f"{key} must be true or false, not {changes[key]!r}")


def new_deployment_run(
    dep: DeploymentRecord,
    parameters: Mapping[str, Any] | None,
    *,
    now: _dt.datetime,
    idempotency_key: str | None = None,
    scheduled_start_time: _dt.datetime | None = None,
    tags: Sequence[str] | None = None,
    parent_flow_run_id: str | None = None,
    parent_task_run_id: str | None = None,
    name: str | None = None,
    state_type: StateType = StateType.SCHEDULED,
    state_name: str = "Scheduled",
    state_message: str | None = None,
) -> FlowRunRecord:
    """The record of a new run of ``dep`` (nothing is written).

    Raises:
        ParameterValidationError: the merged parameters do not fit the schema.
    """
    from sluice.parameter_schemas import check_parameters
    from sluice.utilities.names import generate_run_name

    merged = {**dep.parameters, **(parameters or {})}
    check_parameters(dep.flow_name, dep.parameter_schema, merged)
    return FlowRunRecord(
        id=new_id(),
        flow_name=dep.flow_name,
        name=name or generate_run_name(),
        parameters=merged,
        tags=sorted(set(dep.tags) | set(tags or ())),
        state_type=state_type,
        state_name=state_name,
        state_message=state_message,
        created=now,
        updated=now,
        parent_flow_run_id=parent_flow_run_id,
        parent_task_run_id=parent_task_run_id,
        flow_version=dep.version,
        entrypoint=dep.entrypoint,
        deployment_id=dep.id,
        work_pool_name=dep.work_pool_name,
        work_queue_name=dep.work_queue_name,
        scheduled_start_time=scheduled_start_time or now,
        idempotency_key=idempotency_key,
        end_time=now if state_type is StateType.CANCELLED else None,
    )


class LocalDeploymentsMixin:
    """DeploymentBackend methods for :class:`~sluice.backend.local.LocalBackend`."""

    if TYPE_CHECKING:
        _lock_timeout: float
        _label: str

        @property
        def engine(self) -> Engine: ...

        def _read(self, query: Callable[[Connection], T]) -> T: ...

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

        if not pool.name or "/" in pool.name:
            raise ValueError(f"a work pool's name must be non-empty, without '/': {pool.name!r}")
        if pool.type != "process":
            raise ValueError(f"unknown work pool type {pool.type!r}; known: process")
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

        if not queue.name or "/" in queue.name:
            raise ValueError(f"a work queue's name must be non-empty, without '/': {queue.name!r}")
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
                runs.append(_tick_run(dep, at, now, tags))
                messages.append(None)
            for at, why in skipped:
                run = _tick_run(dep, at, now, tags, skipped=why)
                runs.append(run)
                messages.append(why)
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

    def resume_flow_run(self, run_id: str) -> FlowRunRecord:
        """Queue a Failed/Crashed/Cancelled run of a deployment to resume (AwaitingResume)."""
        from sluice.store import deployment_writes as dw
        from sluice.store import queries

        at = utcnow().timestamp()

        def work(conn: Connection) -> FlowRunRecord:
            run = queries.get_flow_run(conn, run_id)
            if run.deployment_id is None:
                raise ConflictError(
                    "flow run",
                    run.id,
                    "it was not created from a deployment, so no worker can run it; "
                    f"resume it where its code is with `sluice flow-run resume {run.id}`",
                )
            if run.state_type not in RESUMABLE_TYPES:
                raise ConflictError(
                    "flow run",
                    run.id,
                    f"it is {run.state_name}; only Failed, Crashed or Cancelled runs resume",
                )
            message = f"Resume requested (was {run.state_name})"
            dw.set_run_state(
                conn, run.id, StateType.SCHEDULED, AWAITING_RESUME_STATE, message, at, end_time=None
            )
            return queries.get_flow_run(conn, run.id)

        return self._write_now(work)

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
            raise ValueError(f"a worker's status is ONLINE or STOPPED, not {status!r}")
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
            return dq.list_workers(conn, pool_name)

        return self._read(query)


def _tick_run(
    dep: DeploymentRecord,
    at: _dt.datetime,
    now: _dt.datetime,
    tags: Sequence[str] | None,
    skipped: str | None = None,
) -> FlowRunRecord:
    """The run of the schedule tick ``at`` (a Skipped record when ``skipped`` says why)."""
    run = new_deployment_run(
        dep,
        None,
        now=now,
        idempotency_key=scheduled_key(at),
        scheduled_start_time=at.astimezone(_dt.timezone.utc),
        tags=tags,
    )
    if skipped is not None:
        run = dataclasses.replace(
            run,
            state_type=StateType.CANCELLED,
            state_name=SKIPPED_STATE,
            state_message=skipped,
            end_time=now,
        )
    return run
