"""Operations on flows, flow and task runs, states, logs, the journal and attempts.

Each class is one operation's request: its fields are the arguments, its
docstring says what it does, and its ``Operation[...]`` base what it answers.
Run one with ``backend.execute(ReadFlowRun(run_id))`` (or the named method of
:class:`sluice.backend.protocol.Backend` for the operations that have one).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Annotated, TypeVar

from annotated_types import Interval

from sluice.operations.base import Operation
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.states import StateType

F = TypeVar("F", bound="RunFilter")

# -- flows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadFlow(Operation[FlowRecord]):
    """A flow by name (``my_flow`` and ``my-flow`` both match).

    Raises:
        NotFoundError: no such flow (AmbiguousIdError: the name matches several).
    """

    name: str


@dataclass(frozen=True, slots=True)
class ListFlows(Operation[list[FlowRecord]]):
    """Flows, most recently created first."""

    limit: int = 200


# -- flow runs ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadFlowRun(Operation[FlowRunRecord]):
    """A flow run by id or unique id prefix.

    Raises:
        NotFoundError: no such run (AmbiguousIdError: the prefix matches several).
    """

    flow_run_id: str


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which flow runs a listing (or count) takes: the fields of :class:`FlowRunFilter`."""

    flow_name: str | None = None
    state_types: list[StateType] | None = None
    tags: list[str] | None = None
    started_after: _dt.datetime | None = None
    started_before: _dt.datetime | None = None
    parent_flow_run_id: str | None = None
    limit: int = 50
    offset: int = 0

    @classmethod
    def of(cls: type[F], flt: FlowRunFilter) -> F:
        """The request taking the runs ``flt`` matches."""
        return cls(**{name: getattr(flt, name) for name in FlowRunFilter.__dataclass_fields__})

    def filter(self) -> FlowRunFilter:
        """These fields as a :class:`FlowRunFilter` (empty values: no condition)."""
        return FlowRunFilter(
            flow_name=self.flow_name or None,
            state_types=self.state_types or None,
            tags=self.tags or None,
            started_after=self.started_after,
            started_before=self.started_before,
            parent_flow_run_id=self.parent_flow_run_id or None,
            limit=self.limit,
            offset=self.offset,
        )


@dataclass(frozen=True, slots=True)
class ListFlowRuns(RunFilter, Operation[list[FlowRunRecord]]):
    """Flow runs matching the filter, newest first (``limit`` of them from ``offset``)."""


@dataclass(frozen=True, slots=True)
class CountFlowRuns(RunFilter, Operation[int]):
    """How many flow runs match the filter (``limit`` and ``offset`` ignored)."""


@dataclass(frozen=True, slots=True)
class SetFlowRunState(Operation[FlowRunRecord]):
    """Move a flow run to a new state if the orchestration rules
    (:data:`sluice.orchestration.SET_STATE_POLICY`) allow it; the run afterwards.

    Raises:
        NotFoundError: no such run.
        TransitionRefused: a rule refused the change.
    """

    flow_run_id: str
    type: StateType
    #: the state's name (None: the type's, e.g. ``Running``)
    name: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class CancelFlowRun(Operation[FlowRunRecord]):
    """Ask a flow run to stop: a run not yet started becomes Cancelled at once, a
    running one Cancelling (its worker then stops it). The orchestration rules of
    the store decide (the server's in client mode). The run afterwards.

    Raises:
        NotFoundError: no such run.
        TransitionRefused: the run already finished.
    """

    flow_run_id: str


# -- crash marking ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MarkLapsedRunsCrashed(Operation[list[str]]):
    """Mark Running flow runs whose last heartbeat (or start, if none) is ``timeout``
    seconds old on the database's clock as Crashed, with a state record saying why;
    their unfinished task runs become Crashed too. One transaction, safe to run
    from several processes at once. The flow run ids marked.

    Raises:
        InvalidInputError: ``timeout`` is not a number of seconds from 0 to 1e9.
    """

    #: seconds (bounded: a bad timeout is refused by the server's schema too)
    timeout: Annotated[float, Interval(ge=0, le=1e9)]


@dataclass(frozen=True, slots=True)
class GoneProcess:
    """A Running flow run and the process it recorded, which an observer saw gone."""

    flow_run_id: str
    host_id: str
    pid: int
    pid_started: int


@dataclass(frozen=True, slots=True)
class MarkGoneRunsCrashed(Operation[list[str]]):
    """Mark these Running flow runs Crashed, each only if it still runs in the process
    it recorded (``host_id``, ``pid``, ``pid_started``), which the caller saw gone
    from its host; the ids marked."""

    runs: list[GoneProcess]


# -- attempts: the fence between executions of one run (see sluice.liveness) ---------------


@dataclass(frozen=True, slots=True)
class ClaimAttempt(Operation[int]):
    """Take the next attempt of a flow run for the caller, who is about to execute it
    (one transaction); its number. From then on the store refuses writes fenced
    with earlier attempts.

    Raises:
        NotFoundError: no such run.
    """

    flow_run_id: str


@dataclass(frozen=True, slots=True)
class ReadAttempt(Operation[int]):
    """A flow run's stored attempt (0: never executed under fencing).

    Raises:
        NotFoundError: no such run.
    """

    flow_run_id: str


# -- task runs, states, logs --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReadTaskRuns(Operation[list[TaskRunRecord]]):
    """The task runs of a flow run, in creation order."""

    flow_run_id: str


@dataclass(frozen=True, slots=True)
class ReadJournal(Operation[list[TaskRunRecord]]):
    """Every Completed task run of a flow run that has a stored result, in creation
    order (its journal: what a resume replays)."""

    flow_run_id: str


@dataclass(frozen=True, slots=True)
class ReadTaskRun(Operation[TaskRunRecord]):
    """A task run by id or unique id prefix.

    Raises:
        NotFoundError: no such task run (AmbiguousIdError: the prefix matches several).
    """

    task_run_id: str


@dataclass(frozen=True, slots=True)
class FindCachedTaskRun(Operation[TaskRunRecord | None]):
    """The newest Completed task run with ``cache_key``, a stored result, and a cache
    expiration that is unset or later than ``now`` (None: the store's clock); None
    when there is none."""

    cache_key: str
    now: _dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class ReadStates(Operation[list[StateRecord]]):
    """The state history of a flow or task run, oldest first (empty for an unknown id)."""

    run_id: str


@dataclass(frozen=True, slots=True)
class ReadLogs(Operation[list[LogRecord]]):
    """Log lines of a flow run (or of one of its task runs), oldest first: those at
    ``min_level`` or above, ``limit`` of them (None: all) from ``offset``."""

    flow_run_id: str
    task_run_id: str | None = None
    min_level: int = 0
    offset: int = 0
    limit: int | None = None
