"""``/api/work_pools``: pools, their queues and workers; claiming and handing back runs;
queueing a deployment's run to resume."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Body, Depends, HTTPException, Response
from fastapi.responses import JSONResponse
from pydantic import ConfigDict

from sluice.api_deployment_schemas import (
    MAX_CLAIM,
    ClaimRequest,
    ReleaseRequest,
    WorkerHeartbeatRequest,
)
from sluice.api_schemas import MarkedIds
from sluice.backend.deployments_protocol import RELEASED_MESSAGE
from sluice.schemas import FlowRunRecord, WorkerRecord, WorkPoolRecord, WorkQueueRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.refusals import no_nul_in_url, refusals, refuse_nul
from sluice.server.api.route_table import RouteTable
from sluice.server.validation import check_storable

router = RouteTable(tags=["work pools"], dependencies=[Depends(no_nul_in_url)])


@router.post("/work_pools", response_model=WorkPoolRecord, status_code=201)
def create_work_pool(body: WorkPoolRecord, backend: BackendDep) -> WorkPoolRecord:
    """Create a pool with its ``default`` queue (409 if the name is taken)."""
    check_storable(body)
    refuse_nul(body)
    with refusals():
        return backend.create_work_pool(body)


@router.get("/work_pools", response_model=list[WorkPoolRecord])
def list_work_pools(backend: BackendDep) -> list[WorkPoolRecord]:
    """Every pool, by name."""
    return backend.list_work_pools()


@router.get("/work_pools/{name}", response_model=WorkPoolRecord)
def read_work_pool(name: str, backend: BackendDep) -> WorkPoolRecord:
    """A pool by name."""
    return backend.read_work_pool(name)


@router.patch("/work_pools/{name}", response_model=WorkPoolRecord)
def update_work_pool(
    name: str, backend: BackendDep, body: Annotated[dict[str, Any], Body()]
) -> WorkPoolRecord:
    """Change some of ``description``, ``concurrency_limit`` (null: none), ``paused``."""
    check_storable(body, shaped_as=WorkPoolRecord)
    refuse_nul(body)
    with refusals():
        return backend.update_work_pool(name, body)


@router.delete("/work_pools/{name}", status_code=204)
def delete_work_pool(name: str, backend: BackendDep) -> Response:
    """Delete a pool with its queues and workers (409 while deployments use it)."""
    with refusals():
        backend.delete_work_pool(name)
    return Response(status_code=204)


@router.get("/work_pools/{name}/queues", response_model=list[WorkQueueRecord])
def list_work_queues(name: str, backend: BackendDep) -> list[WorkQueueRecord]:
    """The pool's queues by priority, then name."""
    return backend.list_work_queues(name)


@router.post("/work_pools/{name}/queues", response_model=WorkQueueRecord, status_code=201)
def create_work_queue(name: str, body: WorkQueueRecord, backend: BackendDep) -> WorkQueueRecord:
    """Create a queue in the pool (the body's ``pool_name`` must be the pool's)."""
    check_storable(body)
    refuse_nul(body)
    if body.pool_name != name:
        raise HTTPException(422, f"pool_name {body.pool_name!r} is not the pool {name!r}")
    with refusals():
        return backend.create_work_queue(body)


@router.get("/work_pools/{name}/queues/{queue}", response_model=WorkQueueRecord)
def read_work_queue(name: str, queue: str, backend: BackendDep) -> WorkQueueRecord:
    """A queue of the pool."""
    return backend.read_work_queue(name, queue)


@router.patch("/work_pools/{name}/queues/{queue}", response_model=WorkQueueRecord)
def update_work_queue(
    name: str, queue: str, backend: BackendDep, body: Annotated[dict[str, Any], Body()]
) -> WorkQueueRecord:
    """Change some of ``priority``, ``description``, ``concurrency_limit``, ``paused``."""
    check_storable(body, shaped_as=WorkQueueRecord)
    refuse_nul(body)
    with refusals():
        return backend.update_work_queue(name, queue, body)


@router.delete("/work_pools/{name}/queues/{queue}", status_code=204)
def delete_work_queue(name: str, queue: str, backend: BackendDep) -> Response:
    """Delete a queue (409 for ``default`` or a queue deployments use)."""
    with refusals():
        backend.delete_work_queue(name, queue)
    return Response(status_code=204)


@router.post("/work_pools/{name}/workers", response_model=WorkerRecord)
def worker_heartbeat(name: str, body: WorkerHeartbeatRequest, backend: BackendDep) -> WorkerRecord:
    """A worker of the pool says it is alive (``ONLINE``) or stopped (``STOPPED``)."""
    check_storable(body)
    refuse_nul(body)
    with refusals():
        return backend.worker_heartbeat(
            name, body.name, status=body.status, hostname=body.hostname, pid=body.pid,
            now=body.now,
        )  # fmt: skip


@router.get("/work_pools/{name}/workers", response_model=list[WorkerRecord])
def list_workers(name: str, backend: BackendDep) -> list[WorkerRecord]:
    """The pool's workers, most recently heard from first."""
    return backend.list_workers(name)


@router.post("/claims", response_model=list[FlowRunRecord])
def claim_flow_runs(body: ClaimRequest, backend: BackendDep) -> list[FlowRunRecord]:
    """Atomically move up to ``limit`` due runs to Pending for ``worker_name``: from
    ``pool_name`` (its open queues, or ``queues``), or from ``deployment_ids``."""
    check_storable(body)
    refuse_nul(body)
    if not 1 <= body.limit <= MAX_CLAIM:
        raise HTTPException(422, f"limit must be between 1 and {MAX_CLAIM}, not {body.limit}")
    return backend.claim_flow_runs(
        body.pool_name,
        worker_name=body.worker_name,
        limit=body.limit,
        now=body.now,
        queues=body.queues,
        deployment_ids=body.deployment_ids,
    )


@router.post("/claims/release", response_model=MarkedIds)
def release_flow_runs(body: ReleaseRequest, backend: BackendDep) -> MarkedIds:
    """Hand back Pending runs the worker claimed but did not start; the ids handed back."""
    check_storable(body)
    refuse_nul(body)
    ids = backend.release_flow_runs(
        body.run_ids, worker_name=body.worker_name, message=body.message or RELEASED_MESSAGE
    )
    return MarkedIds(ids=ids)


@dataclass
class ResumeRequest:
    """The optional body of a resume: re-execute from this task (``NAME`` or ``NAME:INDEX``)."""

    __pydantic_config__ = ConfigDict(extra="forbid")

    from_task: str | None = None


@router.post(
    "/flow_runs/{flow_run_id}/resume",
    response_model=FlowRunRecord,
    responses={
        409: {"description": "Not a deployment's run, or not Failed/Crashed/Cancelled"},
        422: {"description": "A malformed from_task, or a task the run never ran"},
    },
)
def resume_flow_run(
    flow_run_id: str,
    backend: BackendDep,
    body: Annotated[ResumeRequest | None, Body()] = None,
) -> Any:
    """Queue a Failed, Crashed or Cancelled run of a deployment to run again from its
    journal (Scheduled, named AwaitingResume). With ``{"from_task": "NAME"}`` or
    ``"NAME:INDEX"`` that task and every later call execute again instead of being
    replayed; a bad key is a 422 with ``fields: [{"field": "from_task", "message"}]``.
    A run without a deployment is a 409: resume it where its code is, with
    ``sluice flow-run resume ID [--from TASK]``."""
    from_task = body.from_task if body is not None else None
    with refusals():
        try:
            return backend.resume_flow_run(flow_run_id, from_task=from_task)
        except ValueError as exc:  # only from_task can be wrong
            message = str(exc)
            fields = [{"field": "from_task", "message": message.removeprefix("from_task: ")}]
            return JSONResponse({"detail": message, "fields": fields}, status_code=422)
