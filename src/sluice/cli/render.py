"""Shared output helpers: consoles, tables, JSON, and how times and states look.

Everything here is cheap to import (Rich is imported when a console is first
built) because every command module imports it and ``sluice --help`` must be fast.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.states import StateType

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

#: Width used when stdout is not a terminal (pipes, files, tests): wide enough
#: that full run ids and timestamps never wrap, yet Rich tables only take the
#: width their content needs.
NON_TTY_WIDTH = 200


class OutputFormat(str, enum.Enum):
    """How ``ls``/``inspect`` commands print their result."""

    table = "table"
    json = "json"


OutputOption = Annotated[
    OutputFormat,
    typer.Option(
        "--output",
        "-o",
        case_sensitive=False,
        help="Output format: a readable table, or JSON for scripts.",
    ),
]

STATE_STYLES: dict[StateType, str] = {
    StateType.SCHEDULED: "yellow",
    StateType.PENDING: "bright_black",
    StateType.RUNNING: "blue",
    StateType.COMPLETED: "green",
    StateType.FAILED: "red",
    StateType.CRASHED: "bold red",
    StateType.CANCELLED: "bright_black",
    StateType.CANCELLING: "bright_black",
    StateType.PAUSED: "yellow",
}


_SHORT_COLUMNS = frozenset({"state", "duration", "runs", "upstream", "created", "last run"})


def make_console(stderr: bool = False) -> Console:
    """A console for the stream the command writes to.

    Built per command (not at import) so it sees the current ``sys.stdout``,
    which test runners replace. Markup and highlighting are off: run names,
    messages and log lines are user text and must print verbatim.
    """
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None
    if not _isatty(stream) and "COLUMNS" not in os.environ:
        width = NON_TTY_WIDTH
    return Console(file=stream, width=width, markup=False, highlight=False, stderr=stderr)


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def new_table(*columns: str, title: str | None = None) -> Table:
    """A compact table with the given column headers."""
    from rich import box
    from rich.table import Table

    table = Table(
        title=title,
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for name in columns:
        if name == "id":
            # Ids must stay whole and copyable: users pass them back as prefixes.
            table.add_column(name, no_wrap=True, min_width=36)
        elif name in _SHORT_COLUMNS or name.endswith("(UTC)"):
            # Short fixed-format values: narrow terminals squeeze names, not these.
            table.add_column(name, no_wrap=True)
        else:
            table.add_column(name, overflow="fold")
    return table


def state_text(state_type: StateType | str, name: str | None = None) -> Text:
    """A state's name, colored by its type."""
    from rich.text import Text

    kind = StateType(state_type)
    return Text(name or kind.value.title(), style=STATE_STYLES.get(kind, ""))


def fmt_time(value: _dt.datetime | None, *, millis: bool = False) -> str:
    """A UTC time as ``2026-11-22 05:03:12`` (``-`` when unknown)."""
    if value is None:
        return "-"
    if value.tzinfo is not None:
        value = value.astimezone(_dt.timezone.utc)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if millis:
        text += f".{value.microsecond // 1000:03d}"
    return text


def fmt_seconds(seconds: float) -> str:
    """A duration as ``2.6ms``, ``1.23s``, ``2m 03s``, ``1h 02m 03s`` or ``2d 03h 04m``."""
    seconds = max(seconds, 0.0)
    if seconds < 0.0001:
        return "<0.1ms"
    if seconds < 0.1:
        return f"{seconds * 1000:.1f}ms"  # "0.00s" would hide how fast tasks are
    if seconds < 60:
        return f"{seconds:.2f}s"
    whole = int(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d {hours:02d}h {minutes:02d}m"
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s"


def run_seconds(
    start: _dt.datetime | None, end: _dt.datetime | None, state_type: StateType
) -> float | None:
    """How long a run took, or has been running so far; None if it never started."""
    if start is None:
        return None
    if end is None:
        if state_type is not StateType.RUNNING:
            return None
        end = _dt.datetime.now(_dt.timezone.utc)
    return (end - start).total_seconds()


def fmt_duration(
    start: _dt.datetime | None, end: _dt.datetime | None, state_type: StateType
) -> str:
    """A run's duration for tables; running runs show their elapsed time so far."""
    seconds = run_seconds(start, end, state_type)
    return "-" if seconds is None else fmt_seconds(seconds)


def to_jsonable(value: Any) -> Any:
    """Plain JSON values from records: datetimes as ISO text, enums as their value."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, _dt.datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    return value


def print_json(value: Any) -> None:
    """Write ``value`` as indented JSON to stdout, untouched by Rich."""
    sys.stdout.write(json.dumps(to_jsonable(value), indent=2, default=str) + "\n")


def print_kv(console: Console, rows: Iterable[tuple[str, Any]], title: str | None = None) -> None:
    """A two-column ``field  value`` block (used by ``inspect`` commands)."""
    from rich.table import Table

    grid = Table(box=None, show_header=False, title=title, title_justify="left", pad_edge=False)
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, value if _is_text(value) else str(value))
    console.print(grid)


def _is_text(value: Any) -> bool:
    from rich.text import Text

    return isinstance(value, Text)


def join_or_dash(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "-"
