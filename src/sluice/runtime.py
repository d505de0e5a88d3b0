"""What a running flow can learn about its own run: ``sluice.runtime.flow_run``.

Example::

    from sluice import runtime

    @flow
    def nightly():
        day = runtime.flow_run.scheduled_start_time   # the tick a scheduled/backfilled run is for

Every attribute is read when it is used, from the flow run in progress in this
context (a task reads its flow's run); outside any run each is None. A run
that does not come from a deployment has no deployment, and its scheduled
start time is its start time.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any


class FlowRunInfo:
    """The flow run in progress (see the module docstring)."""

    __slots__ = ()

    @staticmethod
    def _record() -> Any:
        from sluice.context import flow_run_var

        ctx = flow_run_var.get()
        return None if ctx is None else ctx.flow_run

    @property
    def id(self) -> str | None:
        """The flow run's id (inside a task: its flow's run)."""
        rec = self._record()
        if rec is not None:
            return str(rec.id)
        from sluice.context import task_run_var

        task = task_run_var.get()
        return None if task is None else task.flow_run_id

    @property
    def name(self) -> str | None:
        rec = self._record()
        return None if rec is None else str(rec.name)

    @property
    def flow_name(self) -> str | None:
        rec = self._record()
        return None if rec is None else str(rec.flow_name)

    @property
    def parameters(self) -> dict[str, Any]:
        """The run's parameters (as called; empty outside a run)."""
        from sluice.context import flow_run_var

        ctx = flow_run_var.get()
        return {} if ctx is None else dict(ctx.parameters)

    @property
    def tags(self) -> list[str]:
        rec = self._record()
        return [] if rec is None else list(rec.tags)

    @property
    def scheduled_start_time(self) -> _dt.datetime | None:
        """When the run was due: a scheduled or backfilled run's tick; else its start."""
        rec = self._record()
        if rec is None:
            return None
        found: _dt.datetime | None = rec.scheduled_start_time or rec.start_time or rec.created
        return found

    @property
    def deployment_id(self) -> str | None:
        rec = self._record()
        return None if rec is None else rec.deployment_id

    @property
    def deployment_name(self) -> str | None:
        """The deployment's ``FLOW/NAME`` (read from the store on use), or None."""
        from sluice.context import flow_run_var

        ctx = flow_run_var.get()
        if ctx is None or ctx.flow_run.deployment_id is None:
            return None
        backend: Any = ctx.backend
        return str(backend.read_deployment(ctx.flow_run.deployment_id).full_name)

    @property
    def work_pool_name(self) -> str | None:
        rec = self._record()
        return None if rec is None else rec.work_pool_name

    @property
    def run_count(self) -> int:
        rec = self._record()
        return 0 if rec is None else int(rec.run_count)

    def __repr__(self) -> str:
        return f"<sluice.runtime.flow_run id={self.id!r}>"


#: the flow run in progress, attributes read on use
flow_run = FlowRunInfo()

__all__ = ["FlowRunInfo", "flow_run"]
