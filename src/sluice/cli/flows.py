"""``sluice flow ls|inspect``: the flows the store knows and how their runs went."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend
from sluice.cli.render import (
    OutputFormat,
    OutputOption,
    fmt_duration,
    fmt_time,
    make_console,
    new_table,
    print_json,
    print_kv,
    state_text,
    to_jsonable,
)
from sluice.schemas import FlowRunFilter
from sluice.states import StateType

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.schemas import FlowRecord, FlowRunRecord

app = typer.Typer(help="Inspect flows.", no_args_is_help=True)

RECENT_RUNS = 10


def _last_run(backend: Backend, flow_name: str) -> FlowRunRecord | None:
    runs = backend.list_flow_runs(FlowRunFilter(flow_name=flow_name, limit=1))
    return runs[0] if runs else None


def _flow_summary(backend: Backend, flow: FlowRecord) -> dict[str, Any]:
    last = _last_run(backend, flow.name)
    return {
        "flow": flow,
        "run_count": backend.count_flow_runs(FlowRunFilter(flow_name=flow.name)),
        "last_run": last,
    }


@app.command("ls")
def list_flows(
    output: OutputOption = OutputFormat.table,
    limit: Annotated[int, typer.Option(help="Show at most this many flows.")] = 200,
) -> None:
    """List flows, newest first, with their run count and last run's state."""
    backend = cli_backend()
    summaries = [_flow_summary(backend, f) for f in backend.list_flows(limit=limit)]
    if output is OutputFormat.json:
        print_json([_summary_json(s) for s in summaries])
        return
    table = new_table("name", "created", "runs", "last run", "last state")
    for s in summaries:
        last: FlowRunRecord | None = s["last_run"]
        table.add_row(
            s["flow"].name,
            fmt_time(s["flow"].created),
            str(s["run_count"]),
            fmt_time(last.created) if last else "-",
            state_text(last.state_type, last.state_name) if last else "-",
        )
    console = make_console()
    console.print(table if summaries else "No flows recorded yet.")


def _summary_json(summary: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = to_jsonable(summary["flow"])
    last: FlowRunRecord | None = summary["last_run"]
    out["run_count"] = summary["run_count"]
    out["last_run"] = _run_brief(last) if last else None
    return out


def _run_brief(run: FlowRunRecord) -> dict[str, Any]:
    """The few fields of a run that listings show."""
    return {
        "id": run.id,
        "name": run.name,
        "state_type": run.state_type.value,
        "state_name": run.state_name,
        "start_time": to_jsonable(run.start_time),
        "end_time": to_jsonable(run.end_time),
        "created": to_jsonable(run.created),
    }


@app.command("inspect")
def inspect_flow(
    name: Annotated[str, typer.Argument(help="Flow name (my_flow and my-flow are the same).")],
    output: OutputOption = OutputFormat.table,
) -> None:
    """Show a flow, how many runs it has by state, and its most recent runs."""
    backend = cli_backend()
    flow = backend.read_flow(name)
    by_state = _counts_by_state(backend, flow.name)
    recent = backend.list_flow_runs(FlowRunFilter(flow_name=flow.name, limit=RECENT_RUNS))
    total = sum(by_state.values())
    if output is OutputFormat.json:
        data = to_jsonable(flow)
        data.update(
            run_count=total,
            runs_by_state=by_state,
            recent_runs=[_run_brief(r) for r in recent],
        )
        print_json(data)
        return
    _print_flow(flow, total, by_state, recent)


def _counts_by_state(backend: Backend, flow_name: str) -> dict[str, int]:
    """Run counts per state type, leaving out types with no runs."""
    counts = {}
    for state_type in StateType:
        flt = FlowRunFilter(flow_name=flow_name, state_types=[state_type])
        n = backend.count_flow_runs(flt)
        if n:
            counts[state_type.value] = n
    return counts


def _print_flow(
    flow: FlowRecord, total: int, by_state: dict[str, int], recent: list[FlowRunRecord]
) -> None:
    console = make_console()
    breakdown = ", ".join(f"{n} {t.lower()}" for t, n in by_state.items())
    print_kv(
        console,
        [
            ("name", flow.name),
            ("id", flow.id),
            ("description", flow.description or "-"),
            ("version", flow.version or "-"),
            ("created", fmt_time(flow.created)),
            ("runs", f"{total} ({breakdown})" if total else "0"),
            (
                "last state",
                state_text(recent[0].state_type, recent[0].state_name) if recent else "-",
            ),
        ],
        title=f"Flow {flow.name}",
    )
    if not recent:
        return
    console.print()
    table = new_table("id", "name", "state", "start (UTC)", "duration", title="Recent runs")
    for run in recent:
        table.add_row(
            run.id,
            run.name,
            state_text(run.state_type, run.state_name),
            fmt_time(run.start_time),
            fmt_duration(run.start_time, run.end_time, run.state_type),
        )
    console.print(table)
