"""The data model: one truth for what the store keeps and the API serves.

These are plain slotted dataclasses rather than pydantic models because the
engine builds several of them per task call and ``import sluice`` must stay
cheap; the API layer derives its pydantic models from them.

Times are timezone-aware UTC datetimes. JSON-ish fields (parameters, tags,
details) hold plain Python values that ``json.dumps`` accepts.

The stored records (flows, flow runs, task runs, states, logs, deployments,
work pools, work queues, workers) are declared here once: each field is a
column of the record's table, typed by its annotation, and field metadata
(:mod:`sluice.columns`) says the rest: ``Text`` columns, write policies.
Tables, rows, snapshots, the SQLite SQL and the wire form are derived from
these declarations (``docs/architecture.md``, "Stored records").
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import time
from dataclasses import dataclass, field
from typing import Any

from sluice.columns import BIGINT, BY_OPERATION, KEPT, TEXT, column
from sluice.states import NOT_LOADED, State, StateType, utcnow

#: ``StateType.RUNNING`` is an EnumType.__getattr__ call on Python 3.11; this is a global
_RUNNING = StateType.RUNNING
_random = random.Random()
# A forked child would otherwise continue the parent's sequence and mint the
# parent's next ids.
os.register_at_fork(after_in_child=_random.seed)


#: (millisecond, the id text it starts) of the last id made
_id_prefix: tuple[int, str] = (-1, "")


def new_id() -> str:
    """A new run/record id: a time-ordered UUID (version 7 layout) as text.

    Ids that grow with time make inserts append to the id indexes instead of
    landing at random pages, which keeps the writer cheap as the store grows.
    The 74 random bits come from a seeded PRNG, not the OS, because ids need
    uniqueness, not secrecy, and this runs several times per task call.
    """
    global _id_prefix
    millis = time.time_ns() // 1_000_000
    prefix = _id_prefix
    if prefix[0] != millis:
        # The 48-bit time and the version digit: the same for every id of a millisecond.
        text = millis.to_bytes(6, "big").hex()
        prefix = _id_prefix = (millis, f"{text[:8]}-{text[8:]}-7")
    rand = _random.getrandbits(74)
    # 12 random bits, the variant (0b10) with 14 more, then 48 more: bytes.hex()
    # is much cheaper than formatting the integer as hex.
    text = ((rand >> 62) << 64 | (0b10 << 62) | (rand & ((1 << 62) - 1))).to_bytes(10, "big").hex()
    return f"{prefix[1]}{text[1:4]}-{text[4:8]}-{text[8:]}"


def _apply_state(record: FlowRunRecord | TaskRunRecord, state: State) -> None:
    record.state_type = state.type
    record.state_name = state.name
    record.state_message = state.message
    record.updated = state.timestamp
    if state.type is _RUNNING and record.start_time is None:
        record.start_time = state.timestamp
    if state.is_final():
        record.end_time = state.timestamp


@dataclass(slots=True)
class FlowRecord:
    """A flow: the named definition that runs belong to."""

    name: str
    id: str = field(default_factory=new_id)
    description: str | None = field(default=None, metadata=TEXT)
    version: str | None = None
    created: _dt.datetime = field(default_factory=utcnow)


#: A run's ``updated`` is its ``end_time`` once it ended, its ``start_time`` when
#: it starts (the same datetime, see ``_apply_state``): converted once.
_UPDATED = column(often_same_as=("end_time", "start_time"))


@dataclass(slots=True)
class StateRecord:
    """One entry of a run's state history."""

    run_id: str
    kind: str  # "flow" or "task"
    type: StateType
    name: str
    timestamp: _dt.datetime
    message: str | None = field(default=None, metadata=TEXT)
    #: structured context: exception type and traceback for failures, retry delay ...
    details: dict[str, Any] | None = None

    @classmethod
    def from_state(
        cls, run_id: str, kind: str, state: State, details: dict[str, Any] | None = None
    ) -> StateRecord:
        return cls(run_id, kind, state.type, state.name, state.timestamp, state.message, details)


@dataclass(slots=True)
class FlowRunRecord:
    """A flow run: one execution (with all its attempts) of a flow."""

    id: str
    flow_name: str
    name: str
    parameters: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    state_type: StateType = StateType.PENDING
    state_name: str = "Pending"
    state_message: str | None = field(default=None, metadata=TEXT)
    #: attempts made so far (flow retries and resumes each add one)
    run_count: int = 0
    start_time: _dt.datetime | None = None
    end_time: _dt.datetime | None = None
    created: _dt.datetime = field(default_factory=utcnow, metadata=KEPT)
    updated: _dt.datetime = field(default_factory=utcnow, metadata=_UPDATED)
    #: when the process running it last said it was alive, on the store's clock
    #: (the store stamps it: see :mod:`sluice.store.clock`)
    heartbeat: _dt.datetime | None = field(default=None, metadata=column(write="store"))
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    flow_version: str | None = None
    hostname: str | None = None
    pid: int | None = None
    #: reference to the persisted return value (see ``sluice.results``), if any
    result: str | None = field(default=None, metadata=TEXT)
    #: where the flow's code lives (``path/to/file.py:function`` or ``module:function``),
    #: so that a resume can load it again
    entrypoint: str | None = field(default=None, metadata=TEXT)
    #: reference to the exact parameters (persisted like a result), for resumes
    parameters_ref: str | None = field(default=None, metadata=TEXT)
    # -- set when the run comes from a deployment (see sluice.deployments); the
    # store keeps them as created: later snapshots of the run never change them
    #: the deployment this run was created from
    deployment_id: str | None = field(default=None, metadata=BY_OPERATION)
    #: the work pool and queue a worker claims the run from
    work_pool_name: str | None = field(default=None, metadata=BY_OPERATION)
    work_queue_name: str | None = field(default=None, metadata=BY_OPERATION)
    #: when the run is due (for a scheduled or backfilled run: its schedule tick)
    scheduled_start_time: _dt.datetime | None = field(default=None, metadata=BY_OPERATION)
    #: one run per (deployment, key): ``scheduled:<UTC ISO time>`` for schedule
    #: ticks and backfills, or the caller's key given to ``run_deployment``
    idempotency_key: str | None = field(default=None, metadata=BY_OPERATION)
    #: the worker that claimed the run last (set by the claim)
    worker_name: str | None = field(default=None, metadata=BY_OPERATION)
    #: how a worker executes this run (``run_deployment(job_variables=...)``; which
    #: ones apply depends on the pool's type, see :mod:`sluice.job_variables`)
    job_variables: dict[str, Any] = field(
        default_factory=dict, metadata=column(nullable=True, write="operation")
    )
    # -- liveness and fencing (see sluice.liveness)
    #: the execution that holds the run: each process that starts or resumes it
    #: takes the next number, and the store refuses writes of earlier ones
    attempt: int = field(default=0, metadata=column(nullable=True, write="forward"))
    #: the boot and PID namespace of the process running it (with ``pid`` and
    #: ``pid_started``, an observer on that host sees at once that it is gone)
    host_id: str | None = None
    #: the start time of that process, in clock ticks since boot
    pid_started: int | None = field(default=None, metadata=BIGINT)

    @property
    def state(self) -> State:
        """The run's current state as a :class:`State` (name, type, message, time);
        for a completed run with a stored result, ``state.result()`` loads its value."""
        # Imported here: sluice.results loads the serializers, which a process
        # that never reads a run's state does not need.
        from sluice.results.owners import flow_result_owner

        state = State(
            self.state_type,
            self.state_name,
            message=self.state_message,
            data=NOT_LOADED if self.result is not None else None,
            timestamp=self.updated,
            result_ref=self.result,
            result_owner=flow_result_owner(self.id),
        )
        state.run_id = self.id
        return state

    def apply(self, state: State) -> None:
        """Move this record into ``state`` (start/end times follow the state)."""
        _apply_state(self, state)


@dataclass(slots=True)
class TaskRunRecord:
    """A task run: one call of a task inside (or outside) a flow run."""

    id: str
    task_name: str
    name: str
    flow_run_id: str | None = None
    #: position of this call among calls of the same task in the flow run
    call_index: int = 0
    #: index in a ``.map()``; -1 when the call was not mapped
    map_index: int = -1
    tags: list[str] = field(default_factory=list)
    upstream_ids: list[str] = field(default_factory=list)
    state_type: StateType = StateType.PENDING
    state_name: str = "Pending"
    state_message: str | None = field(default=None, metadata=TEXT)
    run_count: int = 0
    start_time: _dt.datetime | None = None
    end_time: _dt.datetime | None = None
    created: _dt.datetime = field(default_factory=utcnow, metadata=KEPT)
    updated: _dt.datetime = field(default_factory=utcnow, metadata=_UPDATED)
    cache_key: str | None = None
    #: when the cached result stops being valid (None: never)
    cache_expiration: _dt.datetime | None = None
    #: fingerprint of the call's inputs: a replay must match it
    input_hash: str | None = None
    #: reference to the persisted return value (see ``sluice.results``), if any
    result: str | None = field(default=None, metadata=TEXT)

    @property
    def task_key(self) -> str:
        """The journal position of this call: ``name:call_index[:map_index]``."""
        base = f"{self.task_name}:{self.call_index}"
        return base if self.map_index < 0 else f"{base}:{self.map_index}"

    def apply(self, state: State) -> None:
        """Move this record into ``state`` (start/end times follow the state)."""
        _apply_state(self, state)


@dataclass(slots=True)
class LogRecord:
    """One log line of a run."""

    flow_run_id: str | None
    task_run_id: str | None
    level: int
    logger: str
    message: str = field(metadata=TEXT)
    timestamp: _dt.datetime


@dataclass(slots=True)
class FlowRunFilter:
    """Which flow runs a listing returns, newest first."""

    flow_name: str | None = None
    state_types: list[StateType] | None = None
    tags: list[str] | None = None
    started_after: _dt.datetime | None = None
    started_before: _dt.datetime | None = None
    parent_flow_run_id: str | None = None
    limit: int = 50
    offset: int = 0


# -- deployments, work pools, workers ---------------------------------------------------

#: idempotency keys of the runs of schedule ticks (and backfills) start with this
SCHEDULED_KEY_PREFIX = "scheduled:"
#: the Cancelled-type state of a schedule tick recorded without running it
SKIPPED_STATE = "Skipped"
#: the Scheduled-type state of a deployment's run queued to resume
AWAITING_RESUME_STATE = "AwaitingResume"
#: the tag of backfilled runs
BACKFILL_TAG = "backfill"


def scheduled_key(at: _dt.datetime, variant: str | None = None) -> str:
    """The idempotency key of a deployment's run for the schedule tick ``at``:
    ``scheduled:<UTC ISO time>``, so one tick has one run whoever creates it;
    ``#<variant>`` is appended for the run of a schedule with its own
    parameters (see :mod:`sluice.scheduling.schedule_options`)."""
    key = SCHEDULED_KEY_PREFIX + at.astimezone(_dt.timezone.utc).isoformat()
    return key if variant is None else f"{key}#{variant}"


@dataclass(slots=True)
class DeploymentRecord:
    """A deployment: a flow's entrypoint with the settings its scheduled and
    triggered runs use. Named ``FLOW/NAME`` (see :attr:`full_name`)."""

    name: str
    flow_name: str
    #: where the flow's code lives: ``path/to/file.py:function`` or ``module:function``
    entrypoint: str = field(metadata=TEXT)
    id: str = field(default_factory=new_id)
    #: the directory a worker runs the entrypoint from (None: the worker's own)
    working_dir: str | None = field(default=None, metadata=TEXT)
    #: default parameters; a run's parameters are these updated with its own
    parameters: dict[str, Any] = field(default_factory=dict)
    #: JSON schema of the flow's parameters, from its signature
    parameter_schema: dict[str, Any] | None = None
    tags: list[str] = field(default_factory=list)
    version: str | None = None
    description: str | None = field(default=None, metadata=TEXT)
    work_pool_name: str = "default"
    work_queue_name: str = "default"
    #: schedules as ``sluice.scheduling.schedules.schedule_to_dict`` makes them
    schedules: list[dict[str, Any]] = field(default_factory=list)
    #: a paused deployment gets no scheduled runs and its runs are not claimed
    paused: bool = False
    #: how many of its runs may be Pending/Running at once (None: no limit)
    concurrency_limit: int | None = None
    #: at most this many of its runs Pending/Running at once (like
    #: concurrency_limit), and with catchup off a schedule tick that comes due
    #: while the limit is reached is recorded Skipped rather than queued
    max_active_runs: int | None = None
    #: after downtime, create the missed runs (True) or record them as skipped
    catchup: bool = False
    created: _dt.datetime = field(default_factory=utcnow)
    updated: _dt.datetime = field(default_factory=utcnow)
    #: the scheduler has created (or skipped) every tick before this time
    planned_until: _dt.datetime | None = None

    @property
    def full_name(self) -> str:
        """``flow_name/name``, the name people use for a deployment."""
        return f"{self.flow_name}/{self.name}"


@dataclass(slots=True)
class WorkPoolRecord:
    """A work pool: where deployments send runs and workers claim them."""

    name: str
    #: how workers of the pool execute runs ("process": a subprocess per run)
    type: str = "process"
    id: str = field(default_factory=new_id)
    description: str | None = field(default=None, metadata=TEXT)
    #: how many runs of the pool may be Pending/Running at once (None: no limit)
    concurrency_limit: int | None = None
    #: a paused pool hands no runs to workers
    paused: bool = False
    created: _dt.datetime = field(default_factory=utcnow)
    updated: _dt.datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class WorkQueueRecord:
    """A queue inside a work pool; workers serve queues by priority (1 first)."""

    pool_name: str
    name: str
    id: str = field(default_factory=new_id)
    #: lower numbers are served first
    priority: int = 1
    description: str | None = field(default=None, metadata=TEXT)
    concurrency_limit: int | None = None
    paused: bool = False
    created: _dt.datetime = field(default_factory=utcnow)
    updated: _dt.datetime = field(default_factory=utcnow)


@dataclass(slots=True)
class WorkerRecord:
    """A worker process of a pool, as its last heartbeat reported it."""

    pool_name: str
    name: str
    last_heartbeat: _dt.datetime
    #: "ONLINE" or "STOPPED" as the worker last said, or "OFFLINE": it went silent
    #: for the heartbeat timeout without saying it stopped (killed, machine lost)
    status: str = "ONLINE"
    hostname: str | None = None
    pid: int | None = None
    created: _dt.datetime = field(default_factory=utcnow, metadata=KEPT)

    def is_online(self) -> bool:
        """Online: it says so, and its heartbeat has not lapsed (the store reads a
        lapsed worker OFFLINE)."""
        return self.status == "ONLINE"
