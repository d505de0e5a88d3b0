"""``sluice flow-run logs``: a run's log lines, oldest first, optionally followed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from sluice.cli.backend import cli_backend
from sluice.cli.errors import CliError
from sluice.cli.render import OutputFormat, OutputOption, fmt_time, make_console, print_json
from sluice.states import TERMINAL_TYPES

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from sluice.backend.protocol import Backend
    from sluice.schemas import LogRecord

LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "WARN": 30, "ERROR": 40, "CRITICAL": 50}
LEVEL_STYLES = {10: "dim", 30: "yellow", 40: "red", 50: "bold red"}
MIN_SOURCE_WIDTH = 12
#: Seconds between polls with --follow.
FOLLOW_INTERVAL = 1.0


def parse_level(text: str | None) -> int:
    """A minimum log level from ``INFO``/``info``/``20`` (None means every level)."""
    if text is None:
        return 0
    if text.strip().isdigit():
        return int(text)
    try:
        return LEVELS[text.strip().upper()]
    except KeyError:
        valid = ", ".join(n.lower() for n in LEVELS if n != "WARN")
        raise CliError(f"unknown log level {text!r}; expected one of: {valid}") from None


def level_name(level: int) -> str:
    names = {v: k for k, v in LEVELS.items() if k != "WARN"}
    return names.get(level, f"LEVEL{level}")


def show_logs(
    run_id: Annotated[str, typer.Argument(help="Flow run id, or a unique prefix of one.")],
    level: Annotated[
        str | None,
        typer.Option("--level", "-l", help="Only lines at this level or above (e.g. INFO)."),
    ] = None,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=1, help="Only the last N lines.")
    ] = None,
    task_run: Annotated[
        str | None,
        typer.Option("--task-run", help="Only lines of this task run (id or unique prefix)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until the run ends.")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Print a flow run's logs (timestamp, level, task or logger, message)."""
    min_level = parse_level(level)
    backend = cli_backend()
    run = backend.read_flow_run(run_id)
    task_run_id = _resolve_task_run(backend, run.id, task_run)
    logs = backend.read_logs(run.id, task_run_id=task_run_id, min_level=min_level)
    sources = {t.id: t.name for t in backend.read_task_runs(run.id)}
    if output is OutputFormat.json:
        print_json(logs[-tail:] if tail else logs)
        return
    console = make_console()
    _print_lines(console, logs[-tail:] if tail else logs, sources)
    if follow:
        _follow(backend, console, run.id, task_run_id, min_level, len(logs))


def _resolve_task_run(backend: Backend, flow_run_id: str, prefix: str | None) -> str | None:
    if prefix is None:
        return None
    task = backend.read_task_run(prefix)
    if task.flow_run_id != flow_run_id:
        raise CliError(f"task run {task.id} does not belong to flow run {flow_run_id}")
    return task.id


def _print_lines(console: Console, logs: list[LogRecord], sources: dict[str, str]) -> None:
    # Sources padded to a common width so messages line up within a batch.
    width = max([len(_source(r, sources)) for r in logs] + [MIN_SOURCE_WIDTH])
    for record in logs:
        # soft_wrap: a log line is never re-wrapped or cropped, so output can be grepped.
        console.print(format_line(record, sources, width), soft_wrap=True)


def _source(record: LogRecord, sources: dict[str, str]) -> str:
    """The task run's name for task lines, else the logger's name."""
    return sources.get(record.task_run_id or "", record.logger)


def format_line(record: LogRecord, sources: dict[str, str], width: int = 0) -> Text:
    """``2026-11-22 05:03:12.123 INFO     extract-0  message``, styled by level."""
    from rich.text import Text

    line = Text()
    line.append(fmt_time(record.timestamp, millis=True), style="dim")
    line.append(f" {level_name(record.level):<8} ", style=LEVEL_STYLES.get(record.level, ""))
    line.append(f"{_source(record, sources):<{width}}", style="cyan")
    line.append("  ")
    line.append(record.message)
    return line


def _follow(
    backend: Backend,
    console: Console,
    run_id: str,
    task_run_id: str | None,
    min_level: int,
    seen: int,
) -> None:
    """Poll for new lines until the run is in a final state and no line is left."""
    while True:
        done = backend.read_flow_run(run_id).state_type in TERMINAL_TYPES
        logs = backend.read_logs(run_id, task_run_id=task_run_id, min_level=min_level, offset=seen)
        if logs:
            sources = {t.id: t.name for t in backend.read_task_runs(run_id)}
            _print_lines(console, logs, sources)
            seen += len(logs)
        elif done:
            return
        else:
            time.sleep(FOLLOW_INTERVAL)
