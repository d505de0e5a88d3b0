"""Task runners: where ``.submit()`` and ``.map()`` calls execute.

``ThreadPoolTaskRunner`` is the default; ``ProcessPoolTaskRunner`` runs tasks in
worker processes. ``ConcurrentTaskRunner`` is an alias of the thread runner.
"""

from __future__ import annotations

from sluice.task_runners.base import TaskRunner
from sluice.task_runners.processes import ProcessPoolTaskRunner
from sluice.task_runners.threads import ConcurrentTaskRunner, ThreadPoolTaskRunner

__all__ = ["ConcurrentTaskRunner", "ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
