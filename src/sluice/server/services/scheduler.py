"""The scheduler service: the server creates deployments' upcoming runs.

One pass of :func:`sluice.deployments.scheduler.schedule_due_runs` every
``settings.scheduler.interval`` seconds. Of several servers on one PostgreSQL
database, the one holding the ``scheduler`` advisory lock does it; the runs'
unique idempotency keys keep even an overlap (a lock handed over mid-pass)
from creating a tick twice.
"""

from __future__ import annotations

import datetime as _dt
import logging
from typing import TYPE_CHECKING

from sluice.server.services.periodic import PeriodicService

if TYPE_CHECKING:
    from sluice.backend.local import LocalBackend
    from sluice.settings import Settings

logger = logging.getLogger("sluice.server.services")


def scheduler_service(
    backend: LocalBackend, settings: Settings, interval: float | None = None
) -> PeriodicService:
    """The scheduler service over ``backend``'s database."""
    from sluice.deployments.scheduler import schedule_due_runs

    conf = settings.scheduler

    def step() -> None:
        report = schedule_due_runs(
            backend,
            horizon=_dt.timedelta(seconds=conf.horizon),
            max_runs=conf.max_runs,
            grace=_dt.timedelta(seconds=conf.grace),
            orphan_timeout=_dt.timedelta(seconds=settings.heartbeat_timeout),
        )
        if report.created or report.skipped or report.late or report.over_limit:
            logger.info(
                "Scheduler: %d run(s) created, %d missed tick(s) skipped, %d late, "
                "%d skipped at max_active_runs",
                report.created,
                report.skipped,
                len(report.late),
                len(report.over_limit),
            )
        if report.requeued:
            logger.warning(
                "Handed back %d run(s) claimed by silent workers: %s",
                len(report.requeued),
                ", ".join(report.requeued),
            )

    return PeriodicService(
        "scheduler", step, interval or conf.interval, backend.database.singleton_lock("scheduler")
    )
