"""Task runners: where ``.submit()`` and ``.map()`` calls execute.

``ThreadPoolTaskRunner`` is the default; ``ProcessPoolTaskRunner`` runs tasks in
worker processes; ``DaskTaskRunner`` runs them on a Dask cluster (the ``dask``
extra). ``ConcurrentTaskRunner`` is an alias of the thread runner.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.task_runners.base import TaskRunner
from sluice.task_runners.processes import ProcessPoolTaskRunner
from sluice.task_runners.threads import ConcurrentTaskRunner, ThreadPoolTaskRunner

if TYPE_CHECKING:
    from sluice.task_runners.dask import DaskTaskRunner

__all__ = [
    "ConcurrentTaskRunner",
    "DaskTaskRunner",
    "ProcessPoolTaskRunner",
    "TaskRunner",
    "ThreadPoolTaskRunner",
]


def __getattr__(name: str) -> Any:
    # Dask is heavy and optional: its runner module loads on first use only.
    if name == "DaskTaskRunner":
        from sluice.task_runners.dask import DaskTaskRunner

        return DaskTaskRunner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
