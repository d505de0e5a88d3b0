"""``sluice deployment ls|inspect|run|pause|resume|delete|backfill``."""

from __future__ import annotations

import contextlib
import datetime as _dt
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend
from sluice.cli.errors import CliError
from sluice.cli.render import (
    OutputFormat,
    OutputOption,
    fmt_time,
    join_or_dash,
    make_console,
    new_table,
    print_json,
    print_kv,
    state_text,
)
from sluice.cli.run import parse_params
from sluice.states import TERMINAL_TYPES, StateType, utcnow

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import DeploymentRecord, FlowRunRecord

app = typer.Typer(
    help="List, inspect, run, pause, resume, delete and backfill deployments.",
    no_args_is_help=True,
)

Name = Annotated[str, typer.Argument(help="The deployment: FLOW/NAME (or its id).")]
ParamOption = Annotated[
    list[str] | None,
    typer.Option("--param", "-p", help="A parameter as key=value (JSON values parsed)."),
]
ParamsOption = Annotated[str | None, typer.Option("--params", help="Parameters as a JSON object.")]


def _backend() -> Any:
    return cli_backend()


def schedules_text(dep: DeploymentRecord) -> str:
    """The deployment's schedules in words, ``-`` without any."""
    from sluice.scheduling.schedule_options import describe_stored

    return join_or_dash([describe_stored(s) for s in dep.schedules])


@app.command("ls")
def list_deployments(
    flow_name: Annotated[
        str | None, typer.Option("--flow-name", "-f", help="Only this flow's deployments.")
    ] = None,
    pool: Annotated[str | None, typer.Option("--pool", help="Only this work pool's.")] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List deployments by flow, then name."""
    deps = _backend().list_deployments(flow_name=flow_name, work_pool_name=pool, limit=0)
    if output is OutputFormat.json:
        print_json(deps)
        return
    console = make_console()
    if not deps:
        console.print(
            "No deployments. Create one with: sluice deploy path/to/file.py:flow --name N"
        )
        return
    table = new_table("deployment", "schedules", "pool", "paused", "id")
    for d in deps:
        table.add_row(
            d.full_name, schedules_text(d), f"{d.work_pool_name}/{d.work_queue_name}",
            "yes" if d.paused else "no", d.id,
        )  # fmt: skip
    console.print(table)


#: how many of the schedules' next ticks ``deployment inspect`` shows
NEXT_TICKS = 5


def next_ticks_of(dep: DeploymentRecord, *, now: _dt.datetime, count: int) -> list[_dt.datetime]:
    """The next ``count`` ticks of the deployment's schedules after ``now`` (UTC)."""
    from sluice.scheduling.schedules import next_ticks, schedule_from_dict

    return next_ticks([schedule_from_dict(s) for s in dep.schedules], now, count)


@app.command("inspect")
def inspect_deployment(name: Name, output: OutputOption = OutputFormat.table) -> None:
    """Show a deployment: settings, schedules, parameters, the schedules' next ticks, and
    its upcoming and recent runs."""
    backend = _backend()
    dep = backend.read_deployment(name)
    runs = backend.list_deployment_runs(dep.id, limit=0)
    upcoming = [r for r in runs if r.state_type is StateType.SCHEDULED][:10]
    recent = [r for r in reversed(runs) if r.state_type is not StateType.SCHEDULED][:10]
    ticks = next_ticks_of(dep, now=utcnow(), count=NEXT_TICKS)
    if output is OutputFormat.json:
        print_json(
            {"deployment": dep, "next_ticks": ticks, "upcoming_runs": upcoming,
             "recent_runs": recent}
        )  # fmt: skip
        return
    console = make_console()
    print_kv(
        console,
        [
            ("deployment", dep.full_name),
            ("id", dep.id),
            ("entrypoint", dep.entrypoint),
            ("working dir", dep.working_dir or "-"),
            ("work pool / queue", f"{dep.work_pool_name} / {dep.work_queue_name}"),
            ("schedules", schedules_text(dep)),
            ("parameters", dep.parameters or "-"),
            ("tags", join_or_dash(dep.tags)),
            ("version", dep.version or "-"),
            ("description", dep.description or "-"),
            ("paused", "yes" if dep.paused else "no"),
            ("concurrency limit", "-" if dep.concurrency_limit is None else dep.concurrency_limit),
            ("max active runs", "-" if dep.max_active_runs is None else dep.max_active_runs),
            ("catchup", "yes" if dep.catchup else "no"),
        ],
    )
    _print_ticks(dep, ticks, upcoming)
    _print_runs(upcoming, "Upcoming runs")
    _print_runs(recent, "Recent runs")


def _print_ticks(
    dep: DeploymentRecord, ticks: list[_dt.datetime], upcoming: list[FlowRunRecord]
) -> None:
    """The schedules' next ticks, each with its run once the scheduler created it (runs
    are created a short horizon ahead, so a daily schedule's next run often has none yet)."""
    if not ticks:
        return
    from zoneinfo import ZoneInfo

    zones = {str(s.get("timezone") or "UTC") for s in dep.schedules}
    zone = zones.pop() if len(zones) == 1 else "UTC"
    title = "Next runs of the schedules" + (" (paused: none will be created)" if dep.paused else "")
    columns = ["scheduled (UTC)", *([f"in {zone}"] if zone != "UTC" else []), "run"]
    table = new_table(*columns, title=title)
    by_time = {r.scheduled_start_time: r for r in upcoming}
    for tick in ticks:
        run = by_time.get(tick)
        local = [tick.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")]
        table.add_row(
            fmt_time(tick), *(local if zone != "UTC" else []), run.id if run else "not created yet"
        )
    make_console().print(table)


def _print_runs(runs: list[FlowRunRecord], title: str) -> None:
    if not runs:
        return
    table = new_table("id", "name", "scheduled (UTC)", "state", title=title)
    for r in runs:
        table.add_row(
            r.id, r.name, fmt_time(r.scheduled_start_time), state_text(r.state_type, r.state_name)
        )
    make_console().print(table)


@app.command("run")
def run(
    name: Name,
    param: ParamOption = None,
    params: ParamsOption = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="An extra tag.")] = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow the run until it finishes.")
    ] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="Reuse the run made with this key.")
    ] = None,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Create a run of a deployment now, for a worker of its pool to execute."""
    from sluice.deployments.run import run_deployment

    parameters = parse_params(param, params)
    created = run_deployment(
        name, parameters, timeout=0, tags=tag, idempotency_key=idempotency_key, as_subflow=False
    )
    record = created.record
    console = make_console()
    if output is OutputFormat.json and not watch:
        print_json(record)
        return
    console.print(f"Created flow run {record.name!r} ({record.id}) of {name}.")
    if not watch:
        return
    final = watch_run(record)
    if output is OutputFormat.json:
        print_json(final)
    if final.state_type is not StateType.COMPLETED:
        raise typer.Exit(1)


def create_flow_run(
    flow_name: Annotated[str, typer.Option("--flow-name", "-f", help="The flow to run.")],
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", "-d", help="Which of the flow's deployments (its NAME)."),
    ] = None,
    param: ParamOption = None,
    params: ParamsOption = None,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Follow the run until it finishes.")
    ] = False,
) -> None:
    """Create a run of a flow's deployment for a worker to execute (the flow's only
    deployment, or the one named by --deployment)."""
    backend = _backend()
    flow = backend.read_flow(flow_name)
    names = [d.name for d in backend.list_deployments(flow_name=flow.name, limit=0)]
    if deployment is None and len(names) == 1:
        deployment = names[0]
    if deployment is None:
        if not names:
            raise CliError(
                f"flow {flow.name!r} has no deployment: create one with `sluice deploy "
                f"FILE.py:FUNCTION --name NAME`, or run it here with `sluice run {flow.name}`"
            )
        raise CliError(
            f"flow {flow.name!r} has {len(names)} deployments ({', '.join(names)}); "
            "choose one with --deployment"
        )
    run(f"{flow.name}/{deployment}", param, params, None, watch, None, OutputFormat.table)


def watch_run(record: FlowRunRecord, poll: float = 0.5) -> FlowRunRecord:
    """Print each state the run passes through until a final one; the final record."""
    backend = _backend()
    console = make_console()
    seen: tuple[StateType, str] | None = None
    while True:
        key = (record.state_type, record.state_name)
        if key != seen:
            seen = key
            line = state_text(record.state_type, record.state_name)
            if record.state_message:
                line.append(f": {record.state_message}")
            console.print(f"{fmt_time(record.updated)}  ", line, sep="")
        if record.state_type in TERMINAL_TYPES:
            return record
        time.sleep(poll)
        record = backend.read_flow_run(record.id)


def _update(name: str, changes: dict[str, Any], verb: str) -> None:
    dep = _backend().update_deployment(name, changes)
    make_console().print(f"Deployment {dep.full_name} {verb}.")


@app.command("pause")
def pause(name: Name) -> None:
    """Pause a deployment: no scheduled runs are created and its runs are not claimed."""
    _update(name, {"paused": True}, "paused")


@app.command("resume")
def resume(name: Name) -> None:
    """Resume a paused deployment."""
    _update(name, {"paused": False}, "resumed")


@app.command("delete")
def delete(name: Name) -> None:
    """Delete a deployment; its runs that have not started are cancelled."""
    backend = _backend()
    dep = backend.read_deployment(name)
    backend.delete_deployment(dep.id)
    make_console().print(f"Deleted deployment {dep.full_name}.")


@contextlib.contextmanager
def _backfill_progress(console: Any, label: str) -> Iterator[Callable[[int, int], None]]:
    """A callback ``(done, total)`` shown as a live bar on a terminal, and as one
    plain line per change elsewhere (a pipe or a log file has no use for a bar)."""
    if not console.is_terminal:
        shown: list[tuple[int, int]] = []

        def line(done: int, total: int) -> None:
            if not shown or shown[-1] != (done, total):
                shown.append((done, total))
                console.print(f"{label}: {done}/{total} runs finished")

        yield line
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    # markup=False: the label holds user text (a deployment's name), printed as it is.
    with Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console,
    ) as progress:  # fmt: skip
        bar = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(bar, completed=done, total=total)


def parse_when(text: str, flag: str, *, end: bool, zone: str | None) -> _dt.datetime:
    """A ``--start``/``--end`` value: a date (the whole day for ``--end``) or an ISO
    date-time; without an offset, in ``zone`` (default UTC)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        tz: _dt.tzinfo = ZoneInfo(zone) if zone else _dt.timezone.utc
    except (ZoneInfoNotFoundError, ValueError):
        raise CliError(f"--timezone {zone!r}: unknown time zone") from None
    raw = text.strip()
    try:
        if len(raw) == 10:
            day = _dt.date.fromisoformat(raw)
            moment = _dt.datetime.combine(day, _dt.time.max if end else _dt.time.min)
        else:
            moment = _dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise CliError(
            f"{flag} {text!r}: expected a date (2024-01-31) or date-time (2024-01-31T06:00)"
        ) from None
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=tz)


@app.command("backfill")
def backfill_command(
    name: Name,
    start: Annotated[str, typer.Option("--start", help="First day (or date-time) of the range.")],
    end: Annotated[str, typer.Option("--end", help="Last day (or date-time), included.")],
    cron: Annotated[str | None, typer.Option("--cron", help="Ticks of this cron instead.")] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help="Ticks every interval instead (3600, 1h).")
    ] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="Time zone of the range and schedule.")
    ] = None,
    max_active: Annotated[
        int | None,
        typer.Option("--max-active", min=1, help="At most this many backfill runs unfinished."),
    ] = None,
    no_wait: Annotated[
        bool, typer.Option("--no-wait", help="Create the runs and return; do not follow them.")
    ] = False,
) -> None:
    """Create one run per schedule tick in [start, end] (no duplicates), then follow them."""
    from sluice.deployments.backfills import backfill
    from sluice.scheduling.schedules import parse_schedule

    schedule = None
    if cron is not None or interval is not None:
        schedule = parse_schedule(cron=cron, interval=interval, timezone=timezone)
    begin = parse_when(start, "--start", end=False, zone=timezone)
    finish = parse_when(end, "--end", end=True, zone=timezone)
    if finish < begin:
        raise CliError(f"--end {end!r} is before --start {start!r}")
    backend = _backend()
    dep = backend.read_deployment(name)
    if schedule is None and not dep.schedules:
        raise CliError(f"deployment {dep.full_name} has no schedule; give --cron or --interval")
    console = make_console()
    if no_wait or max_active is not None:
        report = backfill(dep.id, begin, finish, schedule=schedule, max_active=max_active,
                          backend=backend)  # fmt: skip
        console.print(
            f"Backfill of {dep.full_name}: {len(report.ticks)} ticks, "
            f"{report.created} runs created."
        )
        if no_wait:
            return
    _follow_backfill(backend, dep, begin, finish, schedule)


def _follow_backfill(
    backend: Backend,
    dep: DeploymentRecord,
    begin: _dt.datetime,
    finish: _dt.datetime,
    schedule: Any,
) -> None:
    from sluice.deployments.backfills import backfill

    console = make_console()
    with _backfill_progress(console, f"Backfill {dep.full_name}") as on_progress:
        report = backfill(
            dep.id, begin, finish, schedule=schedule, wait=True, poll_interval=0.5,
            on_progress=on_progress, backend=backend,
        )  # fmt: skip
    failed = [r for r in report.runs if r.state_type is not StateType.COMPLETED]
    make_console().print(
        f"Backfill of {dep.full_name}: {len(report.runs)} runs finished, "
        f"{len(failed)} not completed."
    )
    if failed:
        raise typer.Exit(1)
