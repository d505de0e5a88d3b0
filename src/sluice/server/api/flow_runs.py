"""``/api/flow_runs``: listing, reading, state changes, logs and crash marking."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query
from pydantic import AwareDatetime

from sluice.api_schemas import (
    AttemptAnswer,
    Count,
    MarkedIds,
    MarkGoneRequest,
    MarkLapsedRequest,
    SetStateRequest,
)
from sluice.orchestration import ProposedState
from sluice.schemas import FlowRunFilter, FlowRunRecord, LogRecord, TaskRunRecord
from sluice.server import actions
from sluice.server.api.deps import BackendDep
from sluice.server.api.route_table import RouteTable
from sluice.server.validation import INT64_MAX, check_storable
from sluice.states import StateType, utcnow

router = RouteTable(prefix="/flow_runs", tags=["flow runs"])

#: most runs one page may hold
MAX_PAGE = 1000


def _filter(
    flow_name: str | None = None,
    state: Annotated[list[StateType] | None, Query()] = None,
    tag: Annotated[list[str] | None, Query()] = None,
    started_after: AwareDatetime | None = None,
    started_before: AwareDatetime | None = None,
    parent_flow_run_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
) -> FlowRunFilter:
    return FlowRunFilter(
        flow_name=flow_name or None,
        state_types=state or None,
        tags=tag or None,
        started_after=started_after,
        started_before=started_before,
        parent_flow_run_id=parent_flow_run_id or None,
        limit=limit,
        offset=offset,
    )


FilterDep = Annotated[FlowRunFilter, Depends(_filter)]


# The fixed paths come before /{flow_run_id}, which would otherwise take them for ids.
@router.get("", response_model=list[FlowRunRecord])
def list_flow_runs(backend: BackendDep, flt: FilterDep) -> list[FlowRunRecord]:
    """Flow runs matching the filters, newest first."""
    return backend.list_flow_runs(flt)


@router.get("/count", response_model=Count)
def count_flow_runs(backend: BackendDep, flt: FilterDep) -> Count:
    """How many flow runs match the filters (``limit``/``offset`` ignored)."""
    return Count(count=backend.count_flow_runs(flt))


@router.post("/mark_lapsed", response_model=MarkedIds)
def mark_lapsed(body: MarkLapsedRequest, backend: BackendDep) -> MarkedIds:
    """Mark Running runs silent for ``timeout`` seconds (judged with the database's
    clock, never the caller's) as Crashed; their ids."""
    return MarkedIds(ids=backend.mark_lapsed_runs_crashed(body.timeout))


@router.post("/mark_gone", response_model=MarkedIds)
def mark_gone(body: MarkGoneRequest, backend: BackendDep) -> MarkedIds:
    """Mark Running runs whose process the caller saw gone from its host Crashed (each
    only if it still runs in that very process); their ids."""
    check_storable(body)
    runs = [
        FlowRunRecord(
            id=g.flow_run_id,
            flow_name="",
            name="",
            host_id=g.host_id,
            pid=g.pid,
            pid_started=g.pid_started,
        )
        for g in body.runs
    ]
    return MarkedIds(ids=backend.mark_gone_runs_crashed(runs))


@router.get("/{flow_run_id}", response_model=FlowRunRecord)
def read_flow_run(flow_run_id: str, backend: BackendDep) -> FlowRunRecord:
    """A flow run by id or unique id prefix."""
    return backend.read_flow_run(flow_run_id)


@router.post("/{flow_run_id}/attempt", response_model=AttemptAnswer)
def claim_attempt(flow_run_id: str, backend: BackendDep) -> AttemptAnswer:
    """Take the next attempt of the run for the caller, who is about to execute it:
    from now on, ingested records fenced with an earlier attempt are refused."""
    return AttemptAnswer(attempt=backend.claim_attempt(flow_run_id))


@router.get("/{flow_run_id}/attempt", response_model=AttemptAnswer)
def read_attempt(flow_run_id: str, backend: BackendDep) -> AttemptAnswer:
    """The run's current attempt (the execution that holds it)."""
    return AttemptAnswer(attempt=backend.read_attempt(flow_run_id))


@router.get("/{flow_run_id}/task_runs", response_model=list[TaskRunRecord])
def read_task_runs(flow_run_id: str, backend: BackendDep) -> list[TaskRunRecord]:
    """The flow run's task runs, in creation order."""
    return backend.read_task_runs(flow_run_id)


@router.get("/{flow_run_id}/journal", response_model=list[TaskRunRecord])
def read_journal(flow_run_id: str, backend: BackendDep) -> list[TaskRunRecord]:
    """The flow run's completed task runs with a stored result (what a resume replays)."""
    return backend.read_journal(flow_run_id)


@router.get("/{flow_run_id}/logs", response_model=list[LogRecord])
def read_logs(
    flow_run_id: str,
    backend: BackendDep,
    task_run_id: str | None = None,
    min_level: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    offset: Annotated[int, Query(ge=0, le=INT64_MAX)] = 0,
    limit: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
) -> list[LogRecord]:
    """Log lines of the flow run (or of one of its task runs), oldest first."""
    return backend.read_logs(
        flow_run_id, task_run_id=task_run_id, min_level=min_level, offset=offset, limit=limit
    )


@router.post(
    "/{flow_run_id}/set_state",
    response_model=FlowRunRecord,
    responses={409: {"description": "An orchestration rule refused the change"}},
)
def set_state(flow_run_id: str, body: SetStateRequest, backend: BackendDep) -> FlowRunRecord:
    """Move the flow run to a new state, if the orchestration rules allow it."""
    asked = ProposedState(body.type, body.name or body.type.value.title(), body.message)
    return actions.set_flow_run_state(backend, flow_run_id, asked, utcnow())


@router.post(
    "/{flow_run_id}/cancel",
    response_model=FlowRunRecord,
    responses={409: {"description": "The run already finished"}},
)
def cancel(flow_run_id: str, backend: BackendDep) -> FlowRunRecord:
    """Ask the flow run to stop: Cancelling, or Cancelled at once if it never started."""
    return actions.cancel_flow_run(backend, flow_run_id, utcnow())
