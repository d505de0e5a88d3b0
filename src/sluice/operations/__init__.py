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
How to add an operation: docs/architecture.md.
"""

from __future__ import annotations

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
