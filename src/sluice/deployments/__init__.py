"""Deployments: a flow's entrypoint with parameters, schedules and a work pool.

The schedule math (cron, interval, rrule, timezones and DST, run planning) lives in
:mod:`sluice.scheduling.schedules`; it is pure and takes "now" as an argument.
Nothing here is imported by ``import sluice``.

The public names (``run_deployment``, ``deploy``, ``Deployment``, ``backfill``,
``schedule_due_runs``)
are imported from their modules on first use, so importing one module of the
package does not load the others.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.deployments.backfills import BackfillReport, backfill
    from sluice.deployments.builder import Deployment
    from sluice.deployments.deploying import deploy
    from sluice.deployments.run import DeploymentRun, run_deployment
    from sluice.deployments.scheduler import SchedulerReport, schedule_due_runs

_EXPORTS = {
    "BackfillReport": "sluice.deployments.backfills",
    "Deployment": "sluice.deployments.builder",
    "DeploymentRun": "sluice.deployments.run",
    "SchedulerReport": "sluice.deployments.scheduler",
    "backfill": "sluice.deployments.backfills",
    "deploy": "sluice.deployments.deploying",
    "run_deployment": "sluice.deployments.run",
    "schedule_due_runs": "sluice.deployments.scheduler",
}

__all__ = [
    "BackfillReport",
    "Deployment",
    "DeploymentRun",
    "SchedulerReport",
    "backfill",
    "deploy",
    "run_deployment",
    "schedule_due_runs",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'sluice.deployments' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
