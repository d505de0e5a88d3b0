"""Sluice: Python-first workflow orchestration.

Write flows and tasks as plain decorated functions; every run is tracked
(states, logs, results), retried, timed out and resumable.

Importing this package does no I/O and loads nothing heavy: the store,
SQLAlchemy, pydantic and Dask load when a run first needs them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.context import get_run_context, tags
from sluice.flows import Flow, flow
from sluice.logging.loggers import get_run_logger
from sluice.states import State
from sluice.tasks import Task, task
from sluice.utilities.annotations import allow_failure, unmapped

if TYPE_CHECKING:
    from sluice.engine.resume import resume_flow_run
    from sluice.serving import serve

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "State",
    "Task",
    "__version__",
    "allow_failure",
    "flow",
    "get_run_context",
    "get_run_logger",
    "resume_flow_run",
    "serve",
    "tags",
    "task",
    "unmapped",
]


def __getattr__(name: str) -> Any:
    # ``resume_flow_run`` pulls in the engine, ``serve`` the worker: ``import sluice``
    # must not (the import-time seam: see docs/architecture.md).
    if name == "resume_flow_run":
        from sluice.engine.resume import resume_flow_run

        return resume_flow_run
    if name == "serve":
        from sluice.serving import serve

        return serve
    raise AttributeError(f"module 'sluice' has no attribute {name!r}")
