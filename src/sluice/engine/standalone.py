"""What a task call uses when no flow run is in progress."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sluice.backend.factory import get_backend
from sluice.logging.handlers import setup_logging
from sluice.settings import load_settings
from sluice.task_runners.threads import ThreadPoolTaskRunner

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.task_runners.base import TaskRunner

_lock = threading.Lock()
_runner: TaskRunner | None = None


def standalone_backend() -> Backend:
    """The backend of the current settings (tasks outside flows are recorded too)."""
    settings = load_settings()
    setup_logging(settings)
    return get_backend(settings)


def standalone_runner() -> TaskRunner:
    """A thread pool for ``.submit()`` outside any flow, started on first use."""
    global _runner
    with _lock:
        if _runner is None:
            runner = ThreadPoolTaskRunner()
            runner.start()
            _runner = runner
        return _runner
