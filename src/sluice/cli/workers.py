"""``sluice worker start``, and ``sluice flow-run cancel|execute``: the process side."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from sluice.cli.backend import cli_backend, load_cli_settings
from sluice.cli.errors import CliError
from sluice.cli.render import make_console, state_text

app = typer.Typer(help="Start workers that execute the runs of a work pool.", no_args_is_help=True)


@app.command("start")
def start_worker(
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool to serve.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="The worker's name (default HOST-PID).")
    ] = None,
    queue: Annotated[
        list[str] | None,
        typer.Option("--queue", "-q", help="Only this queue of the pool (repeatable)."),
    ] = None,
    limit_concurrency: Annotated[
        int | None,
        typer.Option("--limit-concurrency", "-l", min=1, help="At most this many runs at once."),
    ] = None,
    poll_interval: Annotated[
        float, typer.Option("--poll-interval", min=0.01, help="Seconds between two claims.")
    ] = 0.2,
    shutdown_grace: Annotated[
        float,
        typer.Option(
            "--shutdown-grace",
            min=0,
            help="On SIGTERM, seconds running runs get to finish before they are handed back.",
        ),
    ] = 30.0,
    run_once: Annotated[
        bool, typer.Option("--run-once", help="Claim once, run what was claimed, then exit.")
    ] = False,
) -> None:
    """Claim due runs of a work pool and run each in a subprocess until stopped (Ctrl-C/SIGTERM).

    The pool is created (type process) if it does not exist. On the embedded
    store the worker also creates the runs of deployments' schedules.
    """
    from sluice.workers.worker import Worker, WorkerOptions, ensure_pool, run_until_signalled

    settings = load_cli_settings()
    backend = cli_backend(settings)
    console = make_console(stderr=True)
    if ensure_pool(backend, pool):
        console.print(f"Created work pool {pool!r} (type process).")
    if queue:
        for q in queue:
            backend.read_work_queue(pool, q)
    try:
        options = WorkerOptions(
            pool=pool,
            name=name or "",
            queues=queue or None,
            limit=limit_concurrency,
            poll_interval=poll_interval,
            # As often as runs beat: both lapse after settings.heartbeat_timeout.
            heartbeat_interval=settings.heartbeat_interval,
            shutdown_grace=shutdown_grace,
            run_once=run_once,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    _enable_worker_logs()
    where = settings.api_url or "the embedded store"
    console.print(f"Worker {options.name!r} serving work pool {pool!r} on {where}.")
    report = run_until_signalled(Worker(options, settings, backend))
    done = ", ".join(f"{n} {k}" for k, n in sorted(report.outcomes.items())) or "none"
    console.print(f"Worker {options.name!r} stopped; runs: {done}.")


def _enable_worker_logs() -> None:
    """The worker's own lines (runs started, ended) on stderr."""
    log = logging.getLogger("sluice.worker")
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s | %(levelname)-7s | %(message)s"))
        log.addHandler(handler)
    log.setLevel(logging.INFO)


def cancel_run(
    run_id: Annotated[str, typer.Argument(help="Flow run id, or a unique prefix of one.")],
) -> None:
    """Cancel a flow run: a run not yet started is Cancelled at once; a running one
    becomes Cancelling and its worker stops it."""
    run = cli_backend().cancel_flow_run(run_id)
    text = state_text(run.state_type, run.state_name)
    make_console().print(f"Flow run {run.id} is now ", text, sep="")


def execute_run(
    run_id: Annotated[str, typer.Argument(help="The id of a Scheduled or Pending flow run.")],
) -> None:
    """Execute a flow run of a deployment in this process, as that run (what workers do)."""
    from sluice.workers.execute import execute_flow_run
    from sluice.workers.payload import EXIT_COMPLETED

    if execute_flow_run(run_id) != EXIT_COMPLETED:
        raise typer.Exit(1)
