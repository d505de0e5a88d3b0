"""Operations: everything a store does on request, each one request type.

A request type is a frozen dataclass whose fields are the operation's
arguments and whose ``Operation[R]`` base says what it answers; its
docstring is the operation's documentation. Every store runs it with
``backend.execute(request)``:

- the embedded store (:class:`~sluice.backend.local.LocalBackend`) with the
  operation's one implementation (:mod:`sluice.store.implementations`), in
  one read or write transaction;
- the HTTP client (:class:`~sluice.backend.http.HttpBackend`) by sending it to
  a server as its entry in :mod:`sluice.operations.routes` says; the server's
  route for that entry runs the same implementation.

Refusals are the same errors everywhere (:mod:`sluice.operations.refusals`).
How to add an operation: docs/architecture.md. The names here are imported from
their modules on first use (building the request types takes milliseconds a
process that only records runs need not spend).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.operations.base import Operation, result_type
    from sluice.operations.deployments import (
        MAX_CLAIM,
        RELEASED_MESSAGE,
        ClaimFlowRuns,
        CreateFlowRunFromDeployment,
        CreateScheduledRuns,
        CreateWorkPool,
        CreateWorkQueue,
        DeleteDeployment,
        DeleteWorkPool,
        DeleteWorkQueue,
        ListDeploymentRuns,
        ListDeployments,
        ListWorkers,
        ListWorkPools,
        ListWorkQueues,
        MarkLateRuns,
        ReadDeployment,
        ReadWorkPool,
        ReadWorkQueue,
        ReleaseFlowRuns,
        RequeueOrphanedRuns,
        ResumeFlowRun,
        SkippedTick,
        SkipRunsOverMaxActive,
        UpdateDeployment,
        UpdateWorkPool,
        UpdateWorkQueue,
        UpsertDeployment,
        WorkerHeartbeat,
    )
    from sluice.operations.runs import (
        CancelFlowRun,
        ClaimAttempt,
        CountFlowRuns,
        FindCachedTaskRun,
        GoneProcess,
        ListFlowRuns,
        ListFlows,
        MarkGoneRunsCrashed,
        MarkLapsedRunsCrashed,
        ReadAttempt,
        ReadFlow,
        ReadFlowRun,
        ReadJournal,
        ReadLogs,
        ReadStates,
        ReadTaskRun,
        ReadTaskRuns,
        RunFilter,
        SetFlowRunState,
    )

_EXPORTS = {
    "CancelFlowRun": "sluice.operations.runs",
    "ClaimAttempt": "sluice.operations.runs",
    "ClaimFlowRuns": "sluice.operations.deployments",
    "CountFlowRuns": "sluice.operations.runs",
    "CreateFlowRunFromDeployment": "sluice.operations.deployments",
    "CreateScheduledRuns": "sluice.operations.deployments",
    "CreateWorkPool": "sluice.operations.deployments",
    "CreateWorkQueue": "sluice.operations.deployments",
    "DeleteDeployment": "sluice.operations.deployments",
    "DeleteWorkPool": "sluice.operations.deployments",
    "DeleteWorkQueue": "sluice.operations.deployments",
    "FindCachedTaskRun": "sluice.operations.runs",
    "GoneProcess": "sluice.operations.runs",
    "ListDeploymentRuns": "sluice.operations.deployments",
    "ListDeployments": "sluice.operations.deployments",
    "ListFlowRuns": "sluice.operations.runs",
    "ListFlows": "sluice.operations.runs",
    "ListWorkPools": "sluice.operations.deployments",
    "ListWorkQueues": "sluice.operations.deployments",
    "ListWorkers": "sluice.operations.deployments",
    "MAX_CLAIM": "sluice.operations.deployments",
    "MarkGoneRunsCrashed": "sluice.operations.runs",
    "MarkLapsedRunsCrashed": "sluice.operations.runs",
    "MarkLateRuns": "sluice.operations.deployments",
    "Operation": "sluice.operations.base",
    "RELEASED_MESSAGE": "sluice.operations.deployments",
    "ReadAttempt": "sluice.operations.runs",
    "ReadDeployment": "sluice.operations.deployments",
    "ReadFlow": "sluice.operations.runs",
    "ReadFlowRun": "sluice.operations.runs",
    "ReadJournal": "sluice.operations.runs",
    "ReadLogs": "sluice.operations.runs",
    "ReadStates": "sluice.operations.runs",
    "ReadTaskRun": "sluice.operations.runs",
    "ReadTaskRuns": "sluice.operations.runs",
    "ReadWorkPool": "sluice.operations.deployments",
    "ReadWorkQueue": "sluice.operations.deployments",
    "ReleaseFlowRuns": "sluice.operations.deployments",
    "RequeueOrphanedRuns": "sluice.operations.deployments",
    "ResumeFlowRun": "sluice.operations.deployments",
    "RunFilter": "sluice.operations.runs",
    "SetFlowRunState": "sluice.operations.runs",
    "SkipRunsOverMaxActive": "sluice.operations.deployments",
    "SkippedTick": "sluice.operations.deployments",
    "UpdateDeployment": "sluice.operations.deployments",
    "UpdateWorkPool": "sluice.operations.deployments",
    "UpdateWorkQueue": "sluice.operations.deployments",
    "UpsertDeployment": "sluice.operations.deployments",
    "WorkerHeartbeat": "sluice.operations.deployments",
    "result_type": "sluice.operations.base",
}

__all__ = [
    "MAX_CLAIM",
    "RELEASED_MESSAGE",
    "CancelFlowRun",
    "ClaimAttempt",
    "ClaimFlowRuns",
    "CountFlowRuns",
    "CreateFlowRunFromDeployment",
    "CreateScheduledRuns",
    "CreateWorkPool",
    "CreateWorkQueue",
    "DeleteDeployment",
    "DeleteWorkPool",
    "DeleteWorkQueue",
    "FindCachedTaskRun",
    "GoneProcess",
    "ListDeploymentRuns",
    "ListDeployments",
    "ListFlowRuns",
    "ListFlows",
    "ListWorkPools",
    "ListWorkQueues",
    "ListWorkers",
    "MarkGoneRunsCrashed",
    "MarkLapsedRunsCrashed",
    "MarkLateRuns",
    "Operation",
    "ReadAttempt",
    "ReadDeployment",
    "ReadFlow",
    "ReadFlowRun",
    "ReadJournal",
    "ReadLogs",
    "ReadStates",
    "ReadTaskRun",
    "ReadTaskRuns",
    "ReadWorkPool",
    "ReadWorkQueue",
    "ReleaseFlowRuns",
    "RequeueOrphanedRuns",
    "ResumeFlowRun",
    "RunFilter",
    "SetFlowRunState",
    "SkipRunsOverMaxActive",
    "SkippedTick",
    "UpdateDeployment",
    "UpdateWorkPool",
    "UpdateWorkQueue",
    "UpsertDeployment",
    "WorkerHeartbeat",
    "result_type",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sluice.operations' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
