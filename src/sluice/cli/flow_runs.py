"""``sluice flow-run ls|inspect|logs|resume``: find runs, see what happened, continue one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend
from sluice.cli.errors import CliError
from sluice.cli.flow_run_logs import show_logs
from sluice.cli.flow_run_resume import resume_run
from sluice.cli.render import (
    OutputFormat,
    OutputOption,
    fmt_duration,
    fmt_time,
    join_or_dash,
    make_console,
    new_table,
    print_json,
    print_kv,
    run_seconds,
    state_text,
    to_jsonable,
)
from sluice.schemas import FlowRunFilter
from sluice.states import StateType, state_type_from_name

if TYPE_CHECKING:
    from rich.console import Console

    from sluice.schemas import FlowRunRecord, StateRecord, TaskRunRecord

app = typer.Typer(
    help="List, inspect, read the logs of, and resume flow runs.", no_args_is_help=True
)

#: Longest stored result text shown by ``inspect`` (JSON output always has all of it).
RESULT_PREVIEW = 300


def parse_states(values: list[str] | None) -> list[StateType] | None:
    """State types from ``--state`` values (repeatable, comma-separated, any case)."""
    if not values:
        return None
    names = [part for value in values for part in value.split(",") if part.strip()]
    try:
        return list(dict.fromkeys(state_type_from_name(name) for name in names))
    except ValueError as exc:
        raise CliError(str(exc)) from None


@app.command("ls")
def list_runs(
    flow_name: Annotated[
        str | None, typer.Option("--flow-name", "-f", help="Only runs of this flow.")
    ] = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", "-s", help="Only runs in this state type (repeatable; e.g. failed)."
        ),
    ] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only runs with this tag (repeatable).")
    ] = None,
    limit: Annotated[
        int, typer.Option("--limit", "-n", min=1, help="Show at most this many runs.")
    ] = 20,
    output: OutputOption = OutputFormat.table,
) -> None:
    """List flow runs, newest first."""
    flt = FlowRunFilter(state_types=parse_states(state), tags=tag or None, limit=limit)
    backend = cli_backend(detect_crashes=True)
    if flow_name is not None:
        # Resolve through the flow so my-flow finds my_flow and a typo is an error.
        flt.flow_name = backend.read_flow(flow_name).name
    runs = backend.list_flow_runs(flt)
    total = backend.count_flow_runs(flt) if len(runs) >= limit else len(runs)
    if output is OutputFormat.json:
        print_json(runs)
        return
    _print_run_table(runs, total)


def _print_run_table(runs: list[FlowRunRecord], total: int) -> None:
    console = make_console()
    if not runs:
        console.print("No flow runs match.")
        return
    table = new_table("id", "flow", "name", "state", "start (UTC)", "duration")
    for run in runs:
        table.add_row(
            run.id,
            run.flow_name,
            run.name,
            state_text(run.state_type, run.state_name),
            fmt_time(run.start_time),
            fmt_duration(run.start_time, run.end_time, run.state_type),
        )
    console.print(table)
    if total > len(runs):
        console.print(f"Showing {len(runs)} of {total} runs; use --limit to see more.")


@app.command("inspect")
def inspect_run(
    run_id: Annotated[str, typer.Argument(help="Flow run id, or a unique prefix of one.")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a flow run: fields, parameters, state history and every task run."""
    json_out = output is OutputFormat.json
    backend = cli_backend(detect_crashes=True)
    run = backend.read_flow_run(run_id)
    states = backend.read_states(run.id)
    task_runs = backend.read_task_runs(run.id)
    # Table output shows histories only for retried tasks; JSON carries all.
    task_states = {
        t.id: backend.read_states(t.id) for t in task_runs if json_out or t.run_count > 1
    }
    if json_out:
        print_json(
            {
                "flow_run": run,
                "states": states,
                "task_runs": [_task_json(t, task_states.get(t.id, [])) for t in task_runs],
            }
        )
        return
    console = make_console()
    _print_run_fields(console, run)
    _print_states(console, states, title="State history")
    _print_task_runs(console, task_runs)
    for task in task_runs:
        if task.id in task_states:
            _print_states(
                console,
                task_states[task.id],
                title=f"Task run {task.task_key} ({task.name}): {task.run_count} attempts",
            )


def _task_json(task: TaskRunRecord, states: list[StateRecord]) -> dict[str, Any]:
    data: dict[str, Any] = to_jsonable(task)
    data["task_key"] = task.task_key
    data["duration_seconds"] = run_seconds(task.start_time, task.end_time, task.state_type)
    data["states"] = to_jsonable(states)
    return data


def _print_run_fields(console: Console, run: FlowRunRecord) -> None:
    state = state_text(run.state_type, run.state_name)
    if run.state_message:
        state.append(f": {run.state_message}")
    rows: list[tuple[str, Any]] = [
        ("id", run.id),
        ("name", run.name),
        ("flow", run.flow_name + (f" (version {run.flow_version})" if run.flow_version else "")),
        ("state", state),
        ("attempts", str(run.run_count)),
        ("created", fmt_time(run.created)),
        ("start", fmt_time(run.start_time)),
        ("end", fmt_time(run.end_time)),
        ("duration", fmt_duration(run.start_time, run.end_time, run.state_type)),
        ("tags", join_or_dash(run.tags)),
    ]
    rows += _optional_rows(run)
    rows.append(("parameters", _pretty_json(run.parameters) if run.parameters else "-"))
    print_kv(console, rows, title=f"Flow run {run.name}")


def _optional_rows(run: FlowRunRecord) -> list[tuple[str, Any]]:
    """Fields worth a line only when set (sub-flows, process, heartbeat, result)."""
    rows: list[tuple[str, Any]] = []
    if run.parent_flow_run_id:
        rows.append(("parent flow run", run.parent_flow_run_id))
    if run.parent_task_run_id:
        rows.append(("parent task run", run.parent_task_run_id))
    if run.hostname or run.pid:
        rows.append(("process", f"{run.hostname or '?'} pid {run.pid or '?'}"))
    if run.heartbeat:
        rows.append(("last heartbeat", fmt_time(run.heartbeat)))
    if run.result is not None:
        text = run.result
        if len(text) > RESULT_PREVIEW:
            text = text[:RESULT_PREVIEW] + f"... ({len(run.result)} chars; see -o json)"
        rows.append(("result", text))
    return rows


def _pretty_json(value: Any) -> str:
    return json.dumps(to_jsonable(value), indent=2, default=str)


def _print_states(console: Console, states: list[StateRecord], title: str) -> None:
    console.print()
    table = new_table("time (UTC)", "state", "message", title=title)
    for st in states:
        table.add_row(
            fmt_time(st.timestamp, millis=True), state_text(st.type, st.name), st.message or ""
        )
    console.print(table)


def _print_task_runs(console: Console, task_runs: list[TaskRunRecord]) -> None:
    console.print()
    if not task_runs:
        console.print("No task runs.")
        return
    # A message column only when something went wrong, to keep the usual case narrow.
    failing = {StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
    show_message = any(t.state_type in failing and t.state_message for t in task_runs)
    columns = ["task key", "name", "state", "runs", "duration", "upstream"]
    table = new_table(*columns, *(["message"] if show_message else []), title="Task runs")
    for t in task_runs:
        row: list[Any] = [
            t.task_key,
            t.name,
            state_text(t.state_type, t.state_name),
            str(t.run_count),
            fmt_duration(t.start_time, t.end_time, t.state_type),
            str(len(t.upstream_ids)),
        ]
        if show_message:
            row.append(t.state_message if t.state_type in failing and t.state_message else "")
        table.add_row(*row)
    console.print(table)


# Registered last so help lists the commands as ls, inspect, logs.
app.command("logs")(show_logs)
app.command("resume")(resume_run)
