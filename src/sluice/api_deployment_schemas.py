"""Request and response bodies of the deployment, work pool and claim endpoints.

Shared by the server (which validates requests with them) and the HTTP client
(which builds requests from them), like :mod:`sluice.api_schemas`. Plain
dataclasses: importing this module costs nothing. See docs/api-deployments.md.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any

#: most runs one claim may take
MAX_CLAIM = 1000


@dataclass
class RunFromDeploymentRequest:
    """A run to create from a deployment (see ``create_flow_run_from_deployment``)."""

    parameters: dict[str, Any] = field(default_factory=dict)
    idempotency_key: str | None = None
    scheduled_start_time: _dt.datetime | None = None
    tags: list[str] | None = None
    parent_flow_run_id: str | None = None
    parent_task_run_id: str | None = None
    name: str | None = None
    #: how a worker executes the run (see sluice.deployments.job_variables)
    job_variables: dict[str, Any] = field(default_factory=dict)


@dataclass
class SkippedTick:
    """A schedule tick recorded as skipped, and why."""

    at: _dt.datetime
    reason: str


@dataclass
class ScheduledRunsRequest:
    """Runs of schedule ticks (or a backfill) to create, idempotently."""

    times: list[_dt.datetime] = field(default_factory=list)
    skipped: list[SkippedTick] = field(default_factory=list)
    planned_until: _dt.datetime | None = None
    tags: list[str] | None = None


@dataclass
class CreatedCount:
    """How many runs a request created (ticks that had a run already are not counted)."""

    created: int


@dataclass
class ClaimRequest:
    """Runs a worker asks for: from ``pool_name``, or from ``deployment_ids`` (serve)."""

    worker_name: str
    limit: int = 1
    pool_name: str | None = None
    queues: list[str] | None = None
    deployment_ids: list[str] | None = None
    now: _dt.datetime | None = None


@dataclass
class ReleaseRequest:
    """Pending runs a worker hands back without running them."""

    run_ids: list[str]
    worker_name: str
    message: str | None = None


@dataclass
class MarkLateRequest:
    """Scheduled runs not started ``grace`` seconds after their time become Late."""

    grace: float
    now: _dt.datetime | None = None


@dataclass
class NowRequest:
    """A pass of a scheduler step at ``now`` (default: the server's clock)."""

    now: _dt.datetime | None = None


@dataclass
class WorkerHeartbeatRequest:
    """A worker saying it is alive (``ONLINE``) or stopped (``STOPPED``)."""

    name: str
    status: str = "ONLINE"
    hostname: str | None = None
    pid: int | None = None
    now: _dt.datetime | None = None
