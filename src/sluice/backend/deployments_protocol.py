"""The DeploymentBackend protocol: deployments, work pools and queues, workers, claims.

Implemented by :class:`~sluice.backend.local.LocalBackend` (embedded SQLite or
PostgreSQL) and :class:`~sluice.backend.http.HttpBackend` (a Sluice server).
Unlike the run records of :class:`~sluice.backend.protocol.Backend`, nothing
here is buffered: every method is one synchronous transaction, committed (or
refused) when it returns, so a created run or a claim is durable at once.

Names: a deployment is found by id or ``FLOW/NAME`` (dashes and underscores
in the flow name match each other); a pool by name; a queue by pool and name.
Times are aware UTC datetimes; ``now`` arguments default to the current time
and exist so that schedules and tests can inject the clock.

Errors: NotFoundError (unknown deployment, pool, queue, run), ConflictError
(a name taken, a pool still in use, a run that cannot be resumed),
ParameterValidationError (run parameters that do not fit the deployment's
schema: no run is created), ValueError (a change of a field that cannot be
changed, a negative limit).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from sluice.schemas import (
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import StateType

#: the message a run handed back by a worker records
RELEASED_MESSAGE = "Handed back by its worker before it started"


@runtime_checkable
class DeploymentBackend(Protocol):
    """What deployments, the scheduler and workers need from a store."""

    # -- deployments ----------------------------------------------------------------
    def upsert_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        """Create a deployment, or replace the one with the same flow and name.

        A replaced deployment keeps its id and creation time; everything else
        comes from ``deployment`` (schedules are replaced, not merged). When
        the schedules change, upcoming runs the old ones created are deleted.
        The work pool (type ``process``) and queue are created when missing.
        Returns the stored deployment.

        Raises:
            ValueError: a name holding ``/``, an empty entrypoint, a negative limit.
        """
        ...

    def read_deployment(self, key: str) -> DeploymentRecord:
        """A deployment by id or ``FLOW/NAME``. Raises NotFoundError."""
        ...

    def list_deployments(
        self,
        *,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        limit: int = 200,
    ) -> list[DeploymentRecord]:
        """Deployments by flow name then name (``limit <= 0``: all)."""
        ...

    def update_deployment(self, key: str, changes: Mapping[str, Any]) -> DeploymentRecord:
        """Change some of ``paused``, ``concurrency_limit``, ``max_active_runs``,
        ``catchup``, ``description``, ``tags``, ``parameters``, ``version``,
        ``schedules`` (dicts as :func:`sluice.deployments.schedules.schedule_to_dict`
        writes them; new ones replace the old and the runs they planned ahead).
        One transaction: other settings changed meanwhile are kept.

        Raises:
            NotFoundError: unknown deployment.
            ValueError: another field, or a bad value.
        """
        ...

    def delete_deployment(self, key: str) -> None:
        """Delete a deployment; its runs that have not started become Cancelled."""
        ...

    def list_deployment_runs(
        self,
        key: str,
        *,
        state_types: Sequence[StateType] | None = None,
        scheduled_after: _dt.datetime | None = None,
        scheduled_before: _dt.datetime | None = None,
        limit: int = 200,
    ) -> list[FlowRunRecord]:
        """Runs of a deployment by scheduled start time (``scheduled_after``
        inclusive, ``scheduled_before`` exclusive; ``limit <= 0``: all)."""
        ...

    # -- work pools and queues ------------------------------------------------------
    def create_work_pool(self, pool: WorkPoolRecord) -> WorkPoolRecord:
        """Create a pool with its ``default`` queue. Raises ConflictError if the name is taken."""
        ...

    def read_work_pool(self, name: str) -> WorkPoolRecord:
        """A pool by name. Raises NotFoundError."""
        ...

    def list_work_pools(self) -> list[WorkPoolRecord]:
        """Every pool, by name."""
        ...

    def update_work_pool(self, name: str, changes: Mapping[str, Any]) -> WorkPoolRecord:
        """Change some of ``description``, ``concurrency_limit`` (None: none), ``paused``."""
        ...

    def delete_work_pool(self, name: str) -> None:
        """Delete a pool, its queues and workers. Raises ConflictError while deployments use it."""
        ...

    def create_work_queue(self, queue: WorkQueueRecord) -> WorkQueueRecord:
        """Create a queue in an existing pool. Raises NotFoundError / ConflictError."""
        ...

    def read_work_queue(self, pool_name: str, name: str) -> WorkQueueRecord:
        """A queue of a pool. Raises NotFoundError."""
        ...

    def list_work_queues(self, pool_name: str) -> list[WorkQueueRecord]:
        """The queues of a pool by priority, then name. Raises NotFoundError."""
        ...

    def update_work_queue(
        self, pool_name: str, name: str, changes: Mapping[str, Any]
    ) -> WorkQueueRecord:
        """Change some of ``priority``, ``description``, ``concurrency_limit``, ``paused``."""
        ...

    def delete_work_queue(self, pool_name: str, name: str) -> None:
        """Delete a queue. Raises ConflictError for ``default`` or a queue deployments use."""
        ...

    # -- runs of deployments ----------------------------------------------------------
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
        """Create a Scheduled run of a deployment, due at ``scheduled_start_time`` (default now).

        Its parameters are the deployment's defaults updated with
        ``parameters``, checked against the deployment's parameter schema
        first. Its tags are the deployment's plus ``tags``. ``job_variables``
        are kept with the run (see :mod:`sluice.deployments.job_variables`).
        With an ``idempotency_key`` already used for this deployment, the
        existing run is returned and nothing is created.

        Raises:
            NotFoundError: unknown deployment.
            ParameterValidationError: naming each bad parameter; no run is created.
            ValueError: ``job_variables`` of the wrong shape; no run is created.
        """
        ...

    def create_scheduled_runs(
        self,
        key: str,
        *,
        times: Sequence[_dt.datetime],
        skipped: Sequence[tuple[_dt.datetime, str]] = (),
        planned_until: _dt.datetime | None = None,
        tags: Sequence[str] | None = None,
    ) -> int:
        """Create the runs of schedule ticks (or a backfill) in one transaction; how many were new.

        Each tick's run has the idempotency key ``scheduled:<UTC ISO time>``:
        a tick that already has a run (whatever created it) is left alone, so
        racing schedulers and repeated backfills create no duplicates. A
        ``skipped`` tick gets a run in the Cancelled-type state ``Skipped``
        with the message given, which keeps the tick's slot and shows it in
        the run history. ``planned_until`` then advances the deployment's
        planning position (never backwards).

        Raises:
            NotFoundError: unknown deployment.
        """
        ...

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
        """Atomically move up to ``limit`` due runs to Pending for ``worker_name``.

        Due: Scheduled, Late or AwaitingResume, with ``scheduled_start_time <=
        now``. From ``pool_name`` (its unpaused queues, or only ``queues``),
        or with ``pool_name`` None from the deployments ``deployment_ids``
        (``serve``). Queue priority first (1 before 2), then scheduled time.
        Paused pools, queues and deployments yield nothing; pool, queue and
        deployment limits (``concurrency_limit``, ``max_active_runs``) are
        honoured. Each run is claimed by exactly one caller.

        Raises:
            NotFoundError: unknown pool, or unknown queue in ``queues``.
        """
        ...

    def release_flow_runs(
        self,
        run_ids: Sequence[str],
        *,
        worker_name: str,
        message: str = RELEASED_MESSAGE,
    ) -> list[str]:
        """Hand back Pending runs this worker claimed but did not start (they become
        Scheduled again); the ids handed back."""
        ...

    def resume_flow_run(self, run_id: str, from_task: str | None = None) -> FlowRunRecord:
        """Queue a Failed, Crashed or Cancelled run of a deployment to run again.

        The run goes back to Scheduled, named ``AwaitingResume``, for a worker
        to claim; it resumes from its journal. With ``from_task`` (``NAME`` or
        ``NAME:INDEX``, see :mod:`sluice.resume_from`) that task and
        every later call execute again instead of being replayed; the key is
        kept in the AwaitingResume state's details until a worker starts it.

        Raises:
            NotFoundError: unknown run.
            ConflictError: the run has no deployment (resume it with
                ``sluice flow-run resume ID``) or is not Failed/Crashed/Cancelled.
            ValueError: a malformed ``from_task``, or a task (or call) the run
                never ran; the message starts with ``from_task:``.
        """
        ...

    def cancel_flow_run(self, run_id: str, now: _dt.datetime | None = None) -> FlowRunRecord:
        """Ask a flow run to stop: a run not yet started becomes Cancelled at once, a
        running one Cancelling (its worker then stops it). The orchestration rules
        decide, on the server in client mode. The run afterwards.

        Raises:
            NotFoundError: unknown run.
            TransitionRefused: the run already finished.
        """
        ...

    def requeue_orphaned_runs(
        self, *, timeout: float, now: _dt.datetime | None = None
    ) -> list[str]:
        """Hand back (Scheduled again) runs of deployments Pending for over ``timeout`` s
        whose claiming worker has sent no heartbeat (``worker_heartbeat``) for as long:
        it died before starting them. The ids handed back."""
        ...

    def mark_late_runs(self, *, grace: float, now: _dt.datetime | None = None) -> list[str]:
        """Rename Scheduled runs of deployments not started ``grace`` s after their
        scheduled time (and creation) to ``Late``; the ids renamed."""
        ...

    def skip_runs_over_max_active(self, *, now: _dt.datetime | None = None) -> list[str]:
        """For deployments at ``max_active_runs`` with catchup off, record due
        schedule runs beyond the limit as ``Skipped`` (newest ones stay); the ids."""
        ...

    # -- workers ----------------------------------------------------------------------
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
        """Record that a worker of a pool is alive (or, status ``STOPPED``, that it stopped).

        Raises:
            NotFoundError: unknown pool.
        """
        ...

    def list_workers(self, pool_name: str) -> list[WorkerRecord]:
        """The workers of a pool, most recently heard from first. Raises NotFoundError."""
        ...
