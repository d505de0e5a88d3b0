"""Crash detection: Running flow runs whose heartbeat lapsed become Crashed."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sluice.engine.heartbeat import detect_crashed_runs
from sluice.server.services.periodic import PeriodicService

if TYPE_CHECKING:
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings

logger = logging.getLogger("sluice.server.services")

#: seconds between two looks for lapsed heartbeats
CRASH_DETECTION_INTERVAL = 5.0


def crash_detector(
    backend: LocalBackend, settings: Settings, interval: float = CRASH_DETECTION_INTERVAL
) -> PeriodicService:
    """The crash detection service over ``backend``'s database."""

    def step() -> None:
        marked = detect_crashed_runs(backend, settings)
        if marked:
            logger.warning("Marked %d flow run(s) Crashed: %s", len(marked), ", ".join(marked))

    return PeriodicService(
        "crash-detector", step, interval, backend.database.singleton_lock("crash-detector")
    )
