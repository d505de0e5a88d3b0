"""``sluice.serve(*deployments)`` and ``my_flow.serve(...)``: one process that schedules and
runs its own deployments, with no work pool or worker to start.

The process registers its deployments (in the work pool ``serve``, which no
ordinary worker is told to serve), then loops like a worker restricted to
those deployments: it runs the scheduler pass for them (idempotent, so a
server's scheduler running too does no harm), claims their due runs and
executes each **in a subprocess**, exactly as a worker does. Subprocesses
rather than threads because a run must be cancellable (its process is
stopped), must not take the serving process down when it crashes, and must
see a fresh interpreter (module state, signal handlers, ``sys.path``), as it
would under a worker. Runs triggered with ``run_deployment`` or ``sluice
deployment run`` are executed too.

SIGINT (Ctrl-C) or SIGTERM stops it: no more claims, runs in progress get
``shutdown_grace`` seconds, then are handed back (see :mod:`sluice.workers.worker`).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from sluice.backend.factory import get_backend
from sluice.workers.worker import Worker, WorkerOptions, run_until_signalled

if TYPE_CHECKING:
    from sluice.deployments.specs import DeploymentSpec
    from sluice.schemas import DeploymentRecord
    from sluice.workers.worker import WorkerReport

#: the work pool served deployments are registered in
SERVE_POOL = "serve"


def serve(
    *deployments: DeploymentSpec,
    limit: int | None = None,
    poll_interval: float = 0.2,
    shutdown_grace: float = 30.0,
) -> WorkerReport:
    """Register ``deployments`` (from ``flow.to_deployment(...)``) and run their runs
    until SIGINT/SIGTERM.

    Args:
        limit: at most this many runs at once (None: no limit).
        poll_interval: seconds between two looks for due runs.
        shutdown_grace: seconds runs in progress get to finish when stopping.

    Returns:
        What was run, by outcome, once stopped.

    Raises:
        ValueError: no deployments, two with the same ``FLOW/NAME``, a bad limit.
        ScheduleError / ParameterValidationError: a deployment that cannot be
            registered (nothing is registered then).
    """
    if not deployments:
        raise ValueError("serve() needs at least one deployment (flow.to_deployment(...))")
    records = register(deployments)
    options = WorkerOptions(
        pool=None,
        limit=limit,
        poll_interval=poll_interval,
        shutdown_grace=shutdown_grace,
        schedule=True,
        deployment_ids=[r.id for r in records],
    )
    _announce(records)
    return run_until_signalled(Worker(options))


def register(deployments: tuple[DeploymentSpec, ...]) -> list[DeploymentRecord]:
    """Store the deployments (in the ``serve`` pool unless they name one); the records."""
    names = [f"{d.load_flow().name}/{d.name}" for d in deployments]
    twice = {n for n in names if names.count(n) > 1}
    if twice:
        raise ValueError(f"deployment {sorted(twice)[0]} is given twice")
    for spec in deployments:
        spec.options.setdefault("work_pool_name", SERVE_POOL)

    backend = get_backend()
    return [spec.apply(backend) for spec in deployments]


def _announce(records: list[DeploymentRecord]) -> None:
    names = ", ".join(r.full_name for r in records)
    print(
        f"Serving {len(records)} deployment(s): {names}. Trigger one with: "
        f"sluice deployment run '{records[0].full_name}'. Stop with Ctrl-C.",
        file=sys.stderr,
        flush=True,
    )
