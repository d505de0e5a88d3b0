"""The scheduler: creates the upcoming runs of deployments' schedules, idempotently.

One pass (:func:`schedule_due_runs`) asks the pure planner
(:func:`sluice.scheduling.schedules.plan_runs`) which ticks of each
unpaused deployment need a run, then has the backend create them in one
transaction per deployment. Each tick's run carries the idempotency key
``scheduled:<UTC ISO time>`` and the store keeps one run per (deployment,
key), so restarts, overlapping passes and several schedulers racing (two
servers, a server and ``serve``) never create a tick twice.

Skipped ticks: after downtime, with ``catchup`` off, the ticks missed (older
than ``grace``) are not run; each is recorded as a run in the Cancelled-type
state ``Skipped`` with a message saying why, so it shows in the deployment's
history and its slot is taken (a later catchup cannot run it by surprise).
The same pass hands back runs a worker claimed but died before starting
(Pending, its heartbeats silent for ``orphan_timeout``), renames runs not
started ``grace`` after their time ``Late``
and, for deployments at ``max_active_runs`` with catchup off, records due
schedule runs beyond the limit as ``Skipped`` instead of letting them pile up.

Used by the server's scheduler service, by ``serve`` and by embedded-mode
workers. "now" is a parameter, so tests drive it with a fake clock.
"""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sluice.errors import SluiceError
from sluice.scheduling.schedule_options import active_schedules
from sluice.scheduling.schedules import plan_runs
from sluice.states import utcnow

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import DeploymentRecord

logger = logging.getLogger("sluice.scheduler")

#: the message of a tick missed while no scheduler ran (catchup off)
MISSED_MESSAGE = "Skipped: missed while no scheduler was running (catchup is off)"
DEFAULT_HORIZON = _dt.timedelta(minutes=10)
DEFAULT_GRACE = _dt.timedelta(seconds=60)
DEFAULT_MAX_RUNS = 50
#: a run Pending this long whose worker sent no heartbeat as long is handed back
DEFAULT_ORPHAN_TIMEOUT = _dt.timedelta(seconds=60)


@dataclass
class SchedulerReport:
    """What one pass did."""

    #: runs created for upcoming (or, with catchup, missed) ticks
    created: int = 0
    #: missed ticks recorded as Skipped
    skipped: int = 0
    #: runs renamed Late
    late: list[str] = field(default_factory=list)
    #: due runs skipped because their deployment was at max_active_runs
    over_limit: list[str] = field(default_factory=list)
    #: Pending runs handed back because their worker went silent before starting them
    requeued: list[str] = field(default_factory=list)
    #: deployments that could not be planned, with why (bad schedules, store errors)
    errors: dict[str, str] = field(default_factory=dict)


def schedule_due_runs(
    backend: Backend,
    *,
    now: _dt.datetime | None = None,
    horizon: _dt.timedelta = DEFAULT_HORIZON,
    max_runs: int = DEFAULT_MAX_RUNS,
    grace: _dt.timedelta = DEFAULT_GRACE,
    deployment_ids: set[str] | None = None,
    orphan_timeout: _dt.timedelta = DEFAULT_ORPHAN_TIMEOUT,
) -> SchedulerReport:
    """One scheduler pass over every unpaused deployment with schedules (or only
    ``deployment_ids``); see the module docstring.

    A deployment that cannot be planned (a schedule the store holds but that
    no longer parses, a store error) is reported in ``errors`` and the pass
    goes on with the others.
    """
    moment = utcnow() if now is None else now.astimezone(_dt.timezone.utc)
    report = SchedulerReport()
    for dep in backend.list_deployments(limit=0):
        if dep.paused or not dep.schedules:
            continue
        if deployment_ids is not None and dep.id not in deployment_ids:
            continue
        try:
            created, skipped = _plan_deployment(backend, dep, moment, horizon, max_runs, grace)
        except SluiceError as exc:
            report.errors[dep.full_name] = str(exc)
            logger.warning("Cannot schedule deployment %s: %s", dep.full_name, exc)
            continue
        report.created += created
        report.skipped += skipped
    report.late = backend.mark_late_runs(grace=grace.total_seconds(), now=moment)
    report.requeued = backend.requeue_orphaned_runs(
        timeout=orphan_timeout.total_seconds(), now=moment
    )
    report.over_limit = backend.skip_runs_over_max_active(now=moment)
    return report


def _plan_deployment(
    backend: Backend,
    dep: DeploymentRecord,
    now: _dt.datetime,
    horizon: _dt.timedelta,
    max_runs: int,
    grace: _dt.timedelta,
) -> tuple[int, int]:
    """Create the runs ``plan_runs`` asks for; (created, skipped)."""
    schedules = active_schedules(dep.schedules)
    plan = plan_runs(
        schedules,
        now=now,
        planned_until=dep.planned_until,
        horizon=horizon,
        max_runs=max_runs,
        catchup=dep.catchup,
        grace=grace,
    )
    ticks = [*plan.to_create, *plan.skipped]
    if not ticks:
        return 0, 0
    created = backend.create_scheduled_runs(
        dep.full_name,
        times=plan.to_create,
        skipped=[(at, MISSED_MESSAGE) for at in plan.skipped],
        planned_until=max(ticks),
    )
    if plan.skipped:
        logger.info(
            "Deployment %s: %d missed tick(s) recorded as skipped (catchup is off)",
            dep.full_name,
            len(plan.skipped),
        )
    return created, len(plan.skipped)
