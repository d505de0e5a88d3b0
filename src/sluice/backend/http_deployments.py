"""HttpBackend's half of :class:`~sluice.backend.deployments_protocol.DeploymentBackend`.

Each method is one request to the server (see docs/api-deployments.md),
answered once the server committed it; pending run records are flushed first
so the server sees this process's own writes. Reads and requests that are
safe to repeat (upserts, changes, idempotent creations, heartbeats) are
retried while the server is unreachable; claims and plain run creations are
not, since a lost answer would leave runs claimed or created twice.

The server's refusals come back as the errors the embedded store raises:
404 NotFoundError, 409 ConflictError, 422 ParameterValidationError or
ValueError, rebuilt from the one-line ``detail``.
"""

from __future__ import annotations

import datetime as _dt
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sluice.api_deployment_schemas import (
    ClaimRequest,
    MarkLateRequest,
    NowRequest,
    ReleaseRequest,
    RunFromDeploymentRequest,
    ScheduledRunsRequest,
    SkippedTick,
    WorkerHeartbeatRequest,
)
from sluice.backend.deployments_protocol import RELEASED_MESSAGE
from sluice.errors import (
    AmbiguousIdError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ParameterValidationError,
    TransitionRefused,
)
from sluice.schemas import (
    DeploymentRecord,
    FlowRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import StateType

if TYPE_CHECKING:
    from sluice.backend.transport import Params, Transport

_NOT_FOUND = re.compile(r"^(?P<kind>.+?) '(?P<key>.*)' not found$", re.S)
_CONFLICT = re.compile(r"^(?P<kind>.+?) '(?P<key>.*?)': (?P<reason>.*)$", re.S)
_INVALID = re.compile(r"^Invalid parameters for flow '(?P<flow>.*?)': (?P<errors>.*)$", re.S)


def _seg(value: str) -> str:
    return quote(value, safe="")


def _json(value: Any) -> Any:
    from sluice.backend import wire

    kind: Any = type(value)
    return wire.adapter(kind).dump_python(value, mode="json")


def refusal_error(status: int, detail: str) -> Exception | None:
    """The Sluice error a refusal of the deployment endpoints stands for (None: unknown)."""
    if status == 404 and (m := _NOT_FOUND.match(detail)):
        return NotFoundError(m["kind"], m["key"])
    if status == 409 and "is ambiguous" in detail and (m := _NOT_FOUND.match(detail)) is None:
        head = detail.split(" is ambiguous", 1)[0]
        kind, _, key = head.partition(" '")
        return AmbiguousIdError(kind, key.rstrip("'"), [])
    if status == 409 and (m := _CONFLICT.match(detail)):
        return ConflictError(m["kind"], m["key"], m["reason"])
    if status == 422 and (m := _INVALID.match(detail)):
        errors = [tuple(part.split(": ", 1)) for part in m["errors"].split("; ")]
        pairs = [(e[0], e[1]) if len(e) == 2 else (e[0], "") for e in errors]
        return ParameterValidationError(m["flow"], pairs)
    if status == 422 and not detail.startswith("["):
        return InvalidInputError(detail)
    return None


def _deployment_path(key: str) -> str:
    flow_name, _, name = key.partition("/")
    return f"/api/deployments/{_seg(flow_name)}/{_seg(name)}"


class HttpDeploymentsMixin:
    """DeploymentBackend methods for :class:`~sluice.backend.http.HttpBackend`."""

    if TYPE_CHECKING:
        _transport: Transport
        _retry_timeout: float

        def flush(self) -> None: ...

    def _call(
        self,
        method: str,
        path: str,
        tp: Any = None,
        *,
        json: Any = None,
        params: Params | None = None,
        retry: bool = True,
    ) -> Any:
        from sluice.backend import wire
        from sluice.backend.transport import READ_RETRY_TIMEOUT, RequestRefusedError, with_retries

        self.flush()

        def attempt() -> Any:
            return self._transport.request(method, path, json=json, params=params)

        try:
            if retry:
                response = with_retries(attempt, min(READ_RETRY_TIMEOUT, self._retry_timeout))
            else:
                response = attempt()
        except RequestRefusedError as exc:
            error = refusal_error(exc.status, exc.detail)
            if error is None:
                raise
            raise error from None
        return None if tp is None else wire.decode(tp, response.content)

    def _deployment_path(self, key: str) -> str:
        """The URL of a deployment named ``FLOW/NAME``, or given by id (looked up first)."""
        if "/" in key:
            return _deployment_path(key)
        found: list[DeploymentRecord] = self._call(
            "GET", "/api/deployments", list[DeploymentRecord], params={"id": key}
        )
        if not found:
            raise NotFoundError("deployment", key)
        return _deployment_path(found[0].full_name)

    # -- deployments ------------------------------------------------------------------

    def upsert_deployment(self, deployment: DeploymentRecord) -> DeploymentRecord:
        """Create a deployment, or replace the one with the same flow and name."""
        result: DeploymentRecord = self._call(
            "PUT", "/api/deployments", DeploymentRecord, json=_json(deployment)
        )
        return result

    def read_deployment(self, key: str) -> DeploymentRecord:
        """A deployment by id or ``FLOW/NAME``. Raises NotFoundError."""
        if "/" not in key:
            found: list[DeploymentRecord] = self._call(
                "GET", "/api/deployments", list[DeploymentRecord], params={"id": key}
            )
            if not found:
                raise NotFoundError("deployment", key)
            return found[0]
        result: DeploymentRecord = self._call("GET", _deployment_path(key), DeploymentRecord)
        return result

    def list_deployments(
        self,
        *,
        flow_name: str | None = None,
        work_pool_name: str | None = None,
        limit: int = 200,
    ) -> list[DeploymentRecord]:
        """Deployments by flow name then name (``limit <= 0``: all), in pages of 1,000."""
        params: dict[str, str | int] = {}
        if flow_name:
            params["flow_name"] = flow_name
        if work_pool_name:
            params["work_pool_name"] = work_pool_name
        found: list[DeploymentRecord] = []
        wanted = limit if limit > 0 else 1 << 62
        while wanted > 0:
            size = min(wanted, 1000)
            page: list[DeploymentRecord] = self._call(
                "GET",
                "/api/deployments",
                list[DeploymentRecord],
                params={**params, "limit": size, "offset": len(found)},
            )
            found.extend(page)
            wanted -= len(page)
            if len(page) < size:
                break
        return found

    def update_deployment(self, key: str, changes: Mapping[str, Any]) -> DeploymentRecord:
        """Change some settings of a deployment."""
        path = self._deployment_path(key)
        result: DeploymentRecord = self._call("PATCH", path, DeploymentRecord, json=dict(changes))
        return result

    def delete_deployment(self, key: str) -> None:
        """Delete a deployment; its runs that have not started become Cancelled."""
        self._call("DELETE", self._deployment_path(key))

    def list_deployment_runs(
        self,
        key: str,
        *,
        state_types: Sequence[StateType] | None = None,
        scheduled_after: _dt.datetime | None = None,
        scheduled_before: _dt.datetime | None = None,
        limit: int = 200,
    ) -> list[FlowRunRecord]:
        """Runs of a deployment by scheduled start time (pages of 1,000 as needed)."""
        from sluice.backend import wire

        path = self._deployment_path(key) + "/runs"
        params: dict[str, Any] = {}
        if state_types:
            params["state"] = [t.value for t in state_types]
        if scheduled_before is not None:
            params["scheduled_before"] = wire.encode_time(scheduled_before)
        runs: list[FlowRunRecord] = []
        after = scheduled_after
        wanted = limit if limit > 0 else 1 << 62
        seen: set[str] = set()
        while wanted > 0:
            page_params = dict(params, limit=min(wanted, 1000))
            if after is not None:
                page_params["scheduled_after"] = wire.encode_time(after)
            page: list[FlowRunRecord] = self._call(
                "GET", path, list[FlowRunRecord], params=page_params
            )
            fresh = [r for r in page if r.id not in seen]
            runs.extend(fresh)
            seen.update(r.id for r in fresh)
            wanted -= len(fresh)
            if len(page) < page_params["limit"] or not fresh:
                break
            # Next page: from the last scheduled time (runs at that time already
            # taken are skipped by id).
            after = page[-1].scheduled_start_time
        return runs

    # -- work pools and queues ----------------------------------------------------------

    def create_work_pool(self, pool: WorkPoolRecord) -> WorkPoolRecord:
        """Create a pool with its ``default`` queue (ConflictError if the name is taken)."""
        result: WorkPoolRecord = self._call(
            "POST", "/api/work_pools", WorkPoolRecord, json=_json(pool), retry=False
        )
        return result

    def read_work_pool(self, name: str) -> WorkPoolRecord:
        """A pool by name. Raises NotFoundError."""
        result: WorkPoolRecord = self._call("GET", f"/api/work_pools/{_seg(name)}", WorkPoolRecord)
        return result

    def list_work_pools(self) -> list[WorkPoolRecord]:
        """Every pool, by name."""
        result: list[WorkPoolRecord] = self._call("GET", "/api/work_pools", list[WorkPoolRecord])
        return result

    def update_work_pool(self, name: str, changes: Mapping[str, Any]) -> WorkPoolRecord:
        """Change some of ``description``, ``concurrency_limit``, ``paused``."""
        path = f"/api/work_pools/{_seg(name)}"
        result: WorkPoolRecord = self._call("PATCH", path, WorkPoolRecord, json=dict(changes))
        return result

    def delete_work_pool(self, name: str) -> None:
        """Delete a pool, its queues and workers (ConflictError while deployments use it)."""
        self._call("DELETE", f"/api/work_pools/{_seg(name)}")

    def create_work_queue(self, queue: WorkQueueRecord) -> WorkQueueRecord:
        """Create a queue in an existing pool."""
        path = f"/api/work_pools/{_seg(queue.pool_name)}/queues"
        result: WorkQueueRecord = self._call(
            "POST", path, WorkQueueRecord, json=_json(queue), retry=False
        )
        return result

    def read_work_queue(self, pool_name: str, name: str) -> WorkQueueRecord:
        """A queue of a pool. Raises NotFoundError."""
        path = f"/api/work_pools/{_seg(pool_name)}/queues/{_seg(name)}"
        result: WorkQueueRecord = self._call("GET", path, WorkQueueRecord)
        return result

    def list_work_queues(self, pool_name: str) -> list[WorkQueueRecord]:
        """The queues of a pool by priority, then name."""
        path = f"/api/work_pools/{_seg(pool_name)}/queues"
        result: list[WorkQueueRecord] = self._call("GET", path, list[WorkQueueRecord])
        return result

    def update_work_queue(
        self, pool_name: str, name: str, changes: Mapping[str, Any]
    ) -> WorkQueueRecord:
        """Change some of ``priority``, ``description``, ``concurrency_limit``, ``paused``."""
        path = f"/api/work_pools/{_seg(pool_name)}/queues/{_seg(name)}"
        result: WorkQueueRecord = self._call("PATCH", path, WorkQueueRecord, json=dict(changes))
        return result

    def delete_work_queue(self, pool_name: str, name: str) -> None:
        """Delete a queue (not ``default``, nor one deployments use)."""
        self._call("DELETE", f"/api/work_pools/{_seg(pool_name)}/queues/{_seg(name)}")

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
        """Create a Scheduled run of a deployment (retried only with an idempotency key)."""
        body = RunFromDeploymentRequest(
            parameters=dict(parameters or {}),
            idempotency_key=idempotency_key,
            scheduled_start_time=scheduled_start_time,
            tags=None if tags is None else list(tags),
            parent_flow_run_id=parent_flow_run_id,
            parent_task_run_id=parent_task_run_id,
            name=name,
            job_variables=dict(job_variables or {}),
        )
        path = self._deployment_path(key) + "/runs"
        result: FlowRunRecord = self._call(
            "POST", path, FlowRunRecord, json=_json(body), retry=idempotency_key is not None
        )
        return result

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
        body = ScheduledRunsRequest(
            times=list(times),
            skipped=[SkippedTick(at, why) for at, why in skipped],
            planned_until=planned_until,
            tags=None if tags is None else list(tags),
        )
        path = self._deployment_path(key) + "/scheduled_runs"
        result: dict[str, int] = self._call("POST", path, dict[str, int], json=_json(body))
        return int(result["created"])

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
        if limit <= 0:
            return []
        body = ClaimRequest(
            worker_name=worker_name,
            limit=min(limit, 1000),
            pool_name=pool_name,
            queues=None if queues is None else list(queues),
            deployment_ids=None if deployment_ids is None else list(deployment_ids),
            now=now,
        )
        result: list[FlowRunRecord] = self._call(
            "POST", "/api/claims", list[FlowRunRecord], json=_json(body), retry=False
        )
        return result

    def release_flow_runs(
        self,
        run_ids: Sequence[str],
        *,
        worker_name: str,
        message: str = RELEASED_MESSAGE,
    ) -> list[str]:
        """Hand back Pending runs this worker claimed but did not start."""
        body = ReleaseRequest(run_ids=list(run_ids), worker_name=worker_name, message=message)
        result: dict[str, list[str]] = self._call(
            "POST", "/api/claims/release", dict[str, list[str]], json=_json(body)
        )
        return result["ids"]

    def cancel_flow_run(self, run_id: str, now: _dt.datetime | None = None) -> FlowRunRecord:
        """Ask the server to cancel ``run_id`` (its rules decide; ``now`` is the server's)."""
        from sluice.backend.transport import RequestRefusedError

        full_id = self.read_flow_run(run_id).id  # type: ignore[attr-defined]
        path = f"/api/flow_runs/{_seg(full_id)}/cancel"
        try:
            result: FlowRunRecord = self._call("POST", path, FlowRunRecord)
        except RequestRefusedError as exc:
            if exc.status != 409:
                raise
            # The server's refusal reads "RuleName: reason" (docs/api.md).
            rule, _, reason = exc.detail.partition(": ")
            raise TransitionRefused(full_id, rule, reason or exc.detail) from None
        return result

    def resume_flow_run(self, run_id: str, from_task: str | None = None) -> FlowRunRecord:
        """Queue a Failed/Crashed/Cancelled run of a deployment to resume (AwaitingResume)."""
        from sluice.resume_from import parse_from_task

        path = f"/api/flow_runs/{_seg(run_id)}/resume"
        if from_task is None:  # no body: what servers without from_task understand
            result: FlowRunRecord = self._call("POST", path, FlowRunRecord)
            return result
        parse_from_task(from_task)  # refused here as the embedded store refuses it
        body = {"from_task": from_task}
        resumed: FlowRunRecord = self._call("POST", path, FlowRunRecord, json=body)
        return resumed

    def requeue_orphaned_runs(
        self, *, timeout: float, now: _dt.datetime | None = None
    ) -> list[str]:
        """Hand back Pending runs whose claiming worker went silent for ``timeout`` s."""
        body = MarkLateRequest(grace=timeout, now=now)
        result: dict[str, list[str]] = self._call(
            "POST", "/api/scheduler/requeue_orphaned", dict[str, list[str]], json=_json(body)
        )
        return result["ids"]

    def mark_late_runs(self, *, grace: float, now: _dt.datetime | None = None) -> list[str]:
        """Rename Scheduled runs of deployments not started within ``grace`` s to Late."""
        body = MarkLateRequest(grace=grace, now=now)
        result: dict[str, list[str]] = self._call(
            "POST", "/api/scheduler/mark_late", dict[str, list[str]], json=_json(body)
        )
        return result["ids"]

    def skip_runs_over_max_active(self, *, now: _dt.datetime | None = None) -> list[str]:
        """Record due schedule runs beyond ``max_active_runs`` as Skipped (catchup off)."""
        body = NowRequest(now=now)
        result: dict[str, list[str]] = self._call(
            "POST", "/api/scheduler/skip_over_max_active", dict[str, list[str]], json=_json(body)
        )
        return result["ids"]

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
        import socket

        body = WorkerHeartbeatRequest(
            name=name, status=status, hostname=hostname or socket.gethostname(), pid=pid, now=now
        )
        path = f"/api/work_pools/{_seg(pool_name)}/workers"
        result: WorkerRecord = self._call("POST", path, WorkerRecord, json=_json(body))
        return result

    def list_workers(self, pool_name: str) -> list[WorkerRecord]:
        """The workers of a pool, most recently heard from first."""
        path = f"/api/work_pools/{_seg(pool_name)}/workers"
        result: list[WorkerRecord] = self._call("GET", path, list[WorkerRecord])
        return result


__all__ = ["HttpDeploymentsMixin", "refusal_error"]
