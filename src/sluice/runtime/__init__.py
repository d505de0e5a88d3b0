"""What running code can learn about its own run, as Prefect's ``prefect.runtime``.

Three modules, each attribute read on use from the run in progress in this
context (empty values outside one)::

    from sluice.runtime import deployment, flow_run, task_run

    flow_run.name, flow_run.id, flow_run.parameters, flow_run.scheduled_start_time
    task_run.name, task_run.id, task_run.task_name, task_run.parameters
    deployment.id, deployment.name, deployment.parameters

See each module for its attributes. Importing this package loads nothing
heavy (the store is read only by the few attributes that need it).
"""

from __future__ import annotations

from sluice.runtime import deployment, flow_run, task_run

__all__ = ["FlowRunInfo", "deployment", "flow_run", "task_run"]


class FlowRunInfo:
    """Kept for code written when ``sluice.runtime.flow_run`` was an instance of this
    class: an instance reads the attributes of :mod:`sluice.runtime.flow_run`."""

    __slots__ = ()

    def __getattr__(self, name: str) -> object:
        return getattr(flow_run, name)
