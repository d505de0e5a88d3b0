"""Log retention: run logs older than ``server.log_retention_days`` are deleted.

Off unless configured (``SLUICE_SERVER_LOG_RETENTION_DAYS``). One pass every
``server.log_retention_interval`` seconds, by one server of those sharing a
database (a singleton lock, like crash detection), deleting in small
transactions (:mod:`sluice.store.retention`) so ingest never waits long.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import TYPE_CHECKING

from sluice.server.services.periodic import PeriodicService
from sluice.states import utcnow

if TYPE_CHECKING:
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings
    from sluice.store.retention import Purged

logger = logging.getLogger("sluice.server.services")


def retention_cutoff(now: _dt.datetime, days: float) -> _dt.datetime:
    """The time before which log lines are deleted, ``days`` before ``now``."""
    return now - _dt.timedelta(days=days)


def purge_old_logs(backend: LocalBackend, days: float, now: _dt.datetime) -> Purged:
    """Delete the log lines of ``backend``'s database older than ``days`` before ``now``."""
    return backend.delete_logs_before(retention_cutoff(now, days))


def log_retention(backend: LocalBackend, settings: Settings) -> PeriodicService | None:
    """The log retention service over ``backend``'s database, or None when it is off."""
    days = settings.server.log_retention_days
    if days <= 0:
        return None

    def step() -> None:
        purged = purge_old_logs(backend, days, utcnow())
        if purged.lines:
            logger.info(
                "Deleted %d log line(s) older than %g day(s) in %d transaction(s)",
                purged.lines,
                days,
                purged.transactions,
            )

    return PeriodicService(
        "log-retention",
        step,
        settings.server.log_retention_interval,
        backend.database.singleton_lock("log-retention"),
    )
