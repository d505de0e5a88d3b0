"""Operations on deployments, work pools and queues, workers, claims and the scheduler.

Unlike run records (written behind, see :class:`sluice.backend.protocol.Backend`),
each of these is one synchronous transaction, committed (or refused) when
``execute`` returns: a created run or a claim is durable at once.

Names: a deployment is found by id or ``FLOW/NAME`` (dashes and underscores in
the flow name match each other); a pool by name; a queue by pool and name.
Times are aware UTC datetimes; a ``now`` left None is the store's clock (the
server's in client mode): schedules and tests give it to inject the clock.

Errors: NotFoundError (unknown deployment, pool, queue, run), ConflictError (a
name taken, a pool still in use, a run that cannot be resumed),
ParameterValidationError (run parameters that do not fit the deployment's
schema: no run is created), InvalidInputError, a ValueError (a change of a
field that cannot be changed, a bad limit, name or schedule).
"""

from __future__ import annotations

import datetime as _dt
import socket
from dataclasses import dataclass, field
from typing import Any

from sluice.operations.base import Operation
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
#: most runs one claim may take
MAX_CLAIM = 1000

# -- deployments --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpsertDeployment(Operation[DeploymentRecord]):
    """Create a deployment, or replace the one with the same flow and name.

    A replaced deployment keeps its id and creation time; everything else
    comes from ``deployment`` (schedules are replaced, not merged, and stored
    in their canonical form). When the schedules change, upcoming runs the old
    ones created are deleted. The work pool (type ``process``) and queue are
    created when missing. Answers the stored deployment.

    Raises:
        InvalidInputError: a name holding ``/``, an empty entrypoint, a negative limit.
        ScheduleError: a schedule that cannot be read.
        ParameterValidationError: default parameters that do not fit the schema.
    """

    deployment: DeploymentRecord


@dataclass(frozen=True, slots=True)
class ReadDeployment(Operation[DeploymentRecord]):
    """A deployment by id or ``FLOW/NAME``.

    Raises:
        NotFoundError: no such deployment.
    """

    key: str


@dataclass(frozen=True, slots=True)
class ListDeployments(Operation[list[DeploymentRecord]]):
    """Deployments by flow name then name, ``limit`` of them (``<= 0``: all) from
    ``offset``; with ``id``, the deployment of that id (none if unknown)."""

    flow_name: str | None = None
    work_pool_name: str | None = None
    id: str | None = None
    limit: int = 200
    offset: int = 0


@dataclass(frozen=True, slots=True)
class UpdateDeployment(Operation[DeploymentRecord]):
    """Change some of ``paused``, ``concurrency_limit``, ``max_active_runs``,
    ``catchup``, ``description``, ``tags``, ``parameters``, ``version``,
    ``schedules`` (dicts as :func:`sluice.scheduling.schedules.schedule_to_dict`
    writes them; new ones replace the old and the runs they planned ahead).
    One transaction: other settings changed meanwhile are kept.

    Raises:
        NotFoundError: unknown deployment.
        InvalidInputError: another field, or a bad value (ScheduleError: a schedule).
    """

    key: str
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteDeployment(Operation[None]):
    """Delete a deployment; its runs that have not started become Cancelled.

    Raises:
        NotFoundError: unknown deployment.
    """

    key: str


@dataclass(frozen=True, slots=True)
class ListDeploymentRuns(Operation[list[FlowRunRecord]]):
    """Runs of a deployment by scheduled start time (``scheduled_after`` inclusive,
    ``scheduled_before`` exclusive; ``limit <= 0``: all).

    Raises:
        NotFoundError: unknown deployment.
    """

    key: str
    state_types: list[StateType] | None = None
    scheduled_after: _dt.datetime | None = None
    scheduled_before: _dt.datetime | None = None
    limit: int = 200


# -- runs of deployments ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateFlowRunFromDeployment(Operation[FlowRunRecord]):
    """Create a Scheduled run of a deployment, due at ``scheduled_start_time`` (None: now).

    Its parameters are the deployment's defaults updated with ``parameters``,
    checked against the deployment's parameter schema first. Its tags are the
    deployment's plus ``tags``. ``job_variables`` are kept with the run (see
    :mod:`sluice.job_variables`). With an ``idempotency_key``
    already used for this deployment, the existing run is answered and
    nothing is created.

    Raises:
        NotFoundError: unknown deployment.
        ParameterValidationError: naming each bad parameter; no run is created.
        InvalidInputError: ``job_variables`` of the wrong shape; no run is created.
    """

    key: str
    parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    scheduled_start_time: _dt.datetime | None = None
    tags: list[str] | None = None
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    name: str | None = None
    job_variables: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SkippedTick:
    """A schedule tick recorded as skipped, and why."""

    at: _dt.datetime
    reason: str


@dataclass(frozen=True, slots=True)
class CreateScheduledRuns(Operation[int]):
    """Create the runs of schedule ticks (or a backfill) in one transaction; how many
    were new.

    Each tick's run has the idempotency key ``scheduled:<UTC ISO time>``: a
    tick that already has a run (whatever created it) is left alone, so
    racing schedulers and repeated backfills create no duplicates. A
    ``skipped`` tick gets a run in the Cancelled-type state ``Skipped`` with
    the reason given, which keeps the tick's slot and shows it in the run
    history. ``planned_until`` then advances the deployment's planning
    position (never backwards).

    Raises:
        NotFoundError: unknown deployment.
    """

    key: str
    times: list[_dt.datetime] = field(default_factory=list)
    skipped: list[SkippedTick] = field(default_factory=list)
    planned_until: _dt.datetime | None = None
    tags: list[str] | None = None


@dataclass(frozen=True, slots=True)
class ClaimFlowRuns(Operation[list[FlowRunRecord]]):
    """Atomically move up to ``limit`` (1 to :data:`MAX_CLAIM`) due runs to Pending
    for ``worker_name``.

    Due: Scheduled, Late or AwaitingResume, with ``scheduled_start_time <=
    now``. From ``pool_name`` (its unpaused queues, or only ``queues``), or
    with ``pool_name`` None from the deployments ``deployment_ids``
    (``serve``). Queue priority first (1 before 2), then scheduled time.
    Paused pools, queues and deployments yield nothing; pool, queue and
    deployment limits (``concurrency_limit``, ``max_active_runs``) are
    honoured. Each run is claimed by exactly one caller.

    Raises:
        NotFoundError: unknown pool, or unknown queue in ``queues``.
        InvalidInputError: a limit out of range.
    """

    worker_name: str
    limit: int = 1
    pool_name: str | None = None
    queues: list[str] | None = None
    deployment_ids: list[str] | None = None
    now: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ReleaseFlowRuns(Operation[list[str]]):
    """Hand back Pending runs this worker claimed but did not start (they become
    Scheduled again, their state saying ``message``, by default
    :data:`RELEASED_MESSAGE`); the ids handed back."""

    run_ids: list[str]
    worker_name: str
    message: str | None = None


@dataclass(frozen=True, slots=True)
class ResumeFlowRun(Operation[FlowRunRecord]):
    """Queue a Failed, Crashed or Cancelled run of a deployment to run again.

    The run goes back to Scheduled, named ``AwaitingResume``, for a worker to
    claim; it resumes from its journal. With ``from_task`` (``NAME`` or
    ``NAME:INDEX``, see :mod:`sluice.resume_from`) that task and every later
    call execute again instead of being replayed; the key is kept in the
    AwaitingResume state's details until a worker starts it.

    Raises:
        NotFoundError: unknown run.
        ConflictError: the run has no deployment (resume it with
            ``sluice flow-run resume ID``) or is not Failed/Crashed/Cancelled.
        InvalidInputError: (field ``from_task``) a malformed key, or a task (or
            call) the run never ran; the message starts with ``from_task:``.
    """

    flow_run_id: str
    from_task: str | None = None


# -- the scheduler's steps ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RequeueOrphanedRuns(Operation[list[str]]):
    """Hand back (Scheduled again) runs of deployments Pending for over ``timeout`` s
    whose claiming worker has sent no heartbeat for as long: it died before
    starting them. The ids handed back.

    Raises:
        InvalidInputError: ``timeout`` is not a number of seconds >= 0.
    """

    timeout: float
    now: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class MarkLateRuns(Operation[list[str]]):
    """Rename Scheduled runs of deployments not started ``grace`` s after their
    scheduled time (and creation) to ``Late``; the ids renamed.

    Raises:
        InvalidInputError: ``grace`` is not a number of seconds >= 0.
    """

    grace: float
    now: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class SkipRunsOverMaxActive(Operation[list[str]]):
    """For deployments at ``max_active_runs`` with catchup off, record due schedule
    runs beyond the limit as ``Skipped`` (newest ones stay); the ids."""

    now: _dt.datetime | None = None


# -- work pools and queues ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateWorkPool(Operation[WorkPoolRecord]):
    """Create a pool with its ``default`` queue (the store assigns its id).

    Raises:
        ConflictError: the name is taken.
        InvalidInputError: a bad name, type or limit.
    """

    pool: WorkPoolRecord


@dataclass(frozen=True, slots=True)
class ReadWorkPool(Operation[WorkPoolRecord]):
    """A pool by name. Raises NotFoundError."""

    name: str


@dataclass(frozen=True, slots=True)
class ListWorkPools(Operation[list[WorkPoolRecord]]):
    """Every pool, by name."""


@dataclass(frozen=True, slots=True)
class UpdateWorkPool(Operation[WorkPoolRecord]):
    """Change some of a pool's ``description``, ``concurrency_limit`` (None: none),
    ``paused``.

    Raises:
        NotFoundError: unknown pool.
        InvalidInputError: another field, or a bad value.
    """

    name: str
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteWorkPool(Operation[None]):
    """Delete a pool, its queues and workers.

    Raises:
        NotFoundError: unknown pool.
        ConflictError: deployments use it.
    """

    name: str


@dataclass(frozen=True, slots=True)
class CreateWorkQueue(Operation[WorkQueueRecord]):
    """Create a queue in an existing pool.

    Raises:
        NotFoundError: unknown pool.
        ConflictError: the name is taken in that pool.
        InvalidInputError: a bad name, priority or limit.
    """

    queue: WorkQueueRecord


@dataclass(frozen=True, slots=True)
class ReadWorkQueue(Operation[WorkQueueRecord]):
    """A queue of a pool. Raises NotFoundError."""

    pool_name: str
    name: str


@dataclass(frozen=True, slots=True)
class ListWorkQueues(Operation[list[WorkQueueRecord]]):
    """The queues of a pool by priority, then name. Raises NotFoundError."""

    pool_name: str


@dataclass(frozen=True, slots=True)
class UpdateWorkQueue(Operation[WorkQueueRecord]):
    """Change some of a queue's ``priority``, ``description``, ``concurrency_limit``,
    ``paused``.

    Raises:
        NotFoundError: unknown pool or queue.
        InvalidInputError: another field, or a bad value.
    """

    pool_name: str
    name: str
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeleteWorkQueue(Operation[None]):
    """Delete a queue.

    Raises:
        NotFoundError: unknown pool or queue.
        ConflictError: the ``default`` queue, or a queue deployments use.
    """

    pool_name: str
    name: str


# -- workers ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WorkerHeartbeat(Operation[WorkerRecord]):
    """Record that a worker of a pool is alive (``ONLINE``) or stopped (``STOPPED``);
    ``hostname`` is where the request is made unless given.

    Raises:
        NotFoundError: unknown pool.
        InvalidInputError: another status.
    """

    pool_name: str
    name: str
    status: str = "ONLINE"
    hostname: str | None = field(default_factory=socket.gethostname)
    pid: int | None = None
    now: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ListWorkers(Operation[list[WorkerRecord]]):
    """The workers of a pool, most recently heard from first (one whose heartbeat
    lapsed reads ``OFFLINE``). Raises NotFoundError."""

    pool_name: str
