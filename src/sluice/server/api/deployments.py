"""``/api/deployments``: deployments by ``FLOW/NAME``, their runs, and the scheduler's steps.

Routes parse, call the server's backend (its DeploymentBackend half) and
render; refusals become 409/422 (see :mod:`sluice.server.api.refusals`).
Schedules are checked and normalized here (``sluice.deployments.schedules``)
before they are stored: the store keeps whatever it is given.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any

from fastapi import Body, Depends, HTTPException, Query, Response
from pydantic import AwareDatetime

from sluice.api_deployment_schemas import (
    CreatedCount,
    MarkLateRequest,
    NowRequest,
    RunFromDeploymentRequest,
    ScheduledRunsRequest,
)
from sluice.api_schemas import MarkedIds
from sluice.backend.deployment_checks import normalized_schedules
from sluice.schemas import DeploymentRecord, FlowRunRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.refusals import no_nul_in_url, refusals, refuse_nul
from sluice.server.api.route_table import RouteTable
from sluice.server.validation import check_storable
from sluice.states import StateType

router = RouteTable(tags=["deployments"], dependencies=[Depends(no_nul_in_url)])

#: most deployments or runs one page may hold
MAX_PAGE = 1000
#: deployments are few: a listing is paged by slicing, up to this offset
MAX_OFFSET = 1_000_000
_CONFLICT = {409: {"description": "The request clashes with what exists"}}


def _key(flow_name: str, name: str) -> str:
    return f"{flow_name}/{name}"


@router.put("/deployments", response_model=DeploymentRecord)
def upsert_deployment(body: DeploymentRecord, backend: BackendDep) -> DeploymentRecord:
    """Create a deployment, or replace the one with the same flow and name (schedules
    replaced, not merged); its pool and queue are created when missing."""
    check_storable(body)
    refuse_nul(body)
    with refusals():
        body = dataclasses.replace(body, schedules=normalized_schedules(body.schedules))
        return backend.upsert_deployment(body)


@router.get("/deployments", response_model=list[DeploymentRecord])
def list_deployments(
    backend: BackendDep,
    flow_name: str | None = None,
    work_pool_name: str | None = None,
    id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[DeploymentRecord]:
    """Deployments by flow name then name; ``id`` picks one by id (an empty list if unknown)."""
    if id is not None:
        from sluice.errors import NotFoundError

        try:
            one = backend.read_deployment(id)
        except NotFoundError:
            return []
        return [one] if one.id == id else []
    found = backend.list_deployments(
        flow_name=flow_name, work_pool_name=work_pool_name, limit=limit + offset
    )
    return found[offset:]


@router.get("/deployments/{flow_name}/{name}", response_model=DeploymentRecord)
def read_deployment(flow_name: str, name: str, backend: BackendDep) -> DeploymentRecord:
    """A deployment by flow name (dashes and underscores alike) and name."""
    return backend.read_deployment(_key(flow_name, name))


@router.patch("/deployments/{flow_name}/{name}", response_model=DeploymentRecord)
def update_deployment(
    flow_name: str, name: str, backend: BackendDep, body: Annotated[dict[str, Any], Body()]
) -> DeploymentRecord:
    """Change some of ``paused``, ``concurrency_limit``, ``max_active_runs``, ``catchup``,
    ``description``, ``tags``, ``parameters``, ``version``, ``schedules`` (new
    schedules replace the old ones and their upcoming runs; a bad one is a 422)."""
    check_storable(body, shaped_as=DeploymentRecord)
    refuse_nul(body)
    with refusals():
        return backend.update_deployment(_key(flow_name, name), body)


@router.delete("/deployments/{flow_name}/{name}", status_code=204)
def delete_deployment(flow_name: str, name: str, backend: BackendDep) -> Response:
    """Delete a deployment; its runs that have not started become Cancelled."""
    backend.delete_deployment(_key(flow_name, name))
    return Response(status_code=204)


@router.post(
    "/deployments/{flow_name}/{name}/runs",
    response_model=FlowRunRecord,
    status_code=201,
    responses={422: {"description": "Parameters that do not fit the deployment's schema"}},
)
def create_run(
    flow_name: str, name: str, body: RunFromDeploymentRequest, backend: BackendDep
) -> FlowRunRecord:
    """Create a Scheduled run of the deployment (its defaults updated with ``parameters``,
    checked against its parameter schema). A repeated ``idempotency_key`` returns the
    run created the first time."""
    check_storable(body)
    refuse_nul(body)
    with refusals():
        return backend.create_flow_run_from_deployment(
            _key(flow_name, name),
            body.parameters,
            idempotency_key=body.idempotency_key,
            scheduled_start_time=body.scheduled_start_time,
            tags=body.tags,
            parent_flow_run_id=body.parent_flow_run_id,
            parent_task_run_id=body.parent_task_run_id,
            name=body.name,
            job_variables=body.job_variables,
        )


@router.get("/deployments/{flow_name}/{name}/runs", response_model=list[FlowRunRecord])
def list_runs(
    flow_name: str,
    name: str,
    backend: BackendDep,
    state: Annotated[list[StateType] | None, Query()] = None,
    scheduled_after: AwareDatetime | None = None,
    scheduled_before: AwareDatetime | None = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 200,
) -> list[FlowRunRecord]:
    """Runs of the deployment by scheduled start time (``scheduled_after`` inclusive,
    ``scheduled_before`` exclusive)."""
    check_storable([scheduled_after, scheduled_before], ("query",))
    return backend.list_deployment_runs(
        _key(flow_name, name),
        state_types=state or None,
        scheduled_after=scheduled_after,
        scheduled_before=scheduled_before,
        limit=limit,
    )


@router.post(
    "/deployments/{flow_name}/{name}/scheduled_runs",
    response_model=CreatedCount,
)
def create_scheduled_runs(
    flow_name: str, name: str, body: ScheduledRunsRequest, backend: BackendDep
) -> CreatedCount:
    """Create the runs of schedule ticks (or a backfill): one per tick whatever was
    created before; ``skipped`` ticks are recorded in the Cancelled-type state Skipped."""
    check_storable(body)
    refuse_nul(body)
    with refusals():
        created = backend.create_scheduled_runs(
            _key(flow_name, name),
            times=body.times,
            skipped=[(s.at, s.reason) for s in body.skipped],
            planned_until=body.planned_until,
            tags=body.tags,
        )
    return CreatedCount(created=created)


@router.post("/scheduler/mark_late", response_model=MarkedIds)
def mark_late(body: MarkLateRequest, backend: BackendDep) -> MarkedIds:
    """Rename Scheduled runs of deployments not started ``grace`` s after their time Late."""
    check_storable(body)
    refuse_nul(body)
    _check_seconds(body.grace)
    return MarkedIds(ids=backend.mark_late_runs(grace=body.grace, now=body.now))


@router.post("/scheduler/requeue_orphaned", response_model=MarkedIds)
def requeue_orphaned(body: MarkLateRequest, backend: BackendDep) -> MarkedIds:
    """Hand back runs Pending for over ``grace`` s whose claiming worker has been silent
    as long (it died before starting them): they become Scheduled again."""
    check_storable(body)
    refuse_nul(body)
    _check_seconds(body.grace)
    return MarkedIds(ids=backend.requeue_orphaned_runs(timeout=body.grace, now=body.now))


def _check_seconds(value: float) -> None:
    if not math.isfinite(value) or value < 0:
        raise HTTPException(422, f"grace must be a number of seconds >= 0, not {value!r}")


@router.post("/scheduler/skip_over_max_active", response_model=MarkedIds)
def skip_over_max_active(body: NowRequest, backend: BackendDep) -> MarkedIds:
    """Record due schedule runs of deployments at ``max_active_runs`` (catchup off) Skipped."""
    check_storable(body)
    refuse_nul(body)
    return MarkedIds(ids=backend.skip_runs_over_max_active(now=body.now))
