"""The types hooks and conditions hand to user code, under Prefect's names.

Code written for Prefect annotates its hooks and retry conditions with the
types of ``prefect.client.schemas.objects``; with Sluice the same imports name
the very classes the engine passes:

* a task hook (``on_completion``, ``on_failure`` ...) and ``retry_condition_fn``
  receive a :data:`TaskRun` (Sluice's :class:`~sluice.schemas.TaskRunRecord`);
* a flow hook receives a :data:`FlowRun` (:class:`~sluice.schemas.FlowRunRecord`);
* both receive a :class:`State` (:class:`sluice.states.State`).

Example::

    from sluice.client.schemas.objects import TaskRun
    from sluice.states import State

    def log_failure(task, task_run: TaskRun, state: State) -> None:
        print(f"{task_run.name} ended {state.name}")
"""

from __future__ import annotations

from sluice.schemas import (
    DeploymentRecord,
    FlowRecord,
    FlowRunRecord,
    LogRecord,
    TaskRunRecord,
    WorkerRecord,
    WorkPoolRecord,
    WorkQueueRecord,
)
from sluice.states import State, StateType

# Aliases, not subclasses: ``isinstance(task_run, TaskRun)`` holds for what a hook receives.
Deployment = DeploymentRecord
Flow = FlowRecord
FlowRun = FlowRunRecord
Log = LogRecord
TaskRun = TaskRunRecord
Worker = WorkerRecord
WorkPool = WorkPoolRecord
WorkQueue = WorkQueueRecord

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
