"""Prefect's ``prefect.client.schemas`` names: see :mod:`sluice.client.schemas.objects`."""

from __future__ import annotations

from sluice.client.schemas.objects import (
    Deployment,
    Flow,
    FlowRun,
    Log,
    State,
    StateType,
    TaskRun,
    Worker,
    WorkPool,
    WorkQueue,
)

__all__ = [
    "Deployment",
    "Flow",
    "FlowRun",
    "Log",
    "State",
    "StateType",
    "TaskRun",
    "WorkPool",
    "WorkQueue",
    "Worker",
]
