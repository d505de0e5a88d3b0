"""One place that turns expected failures into ``Error: ...`` and exit code 1.

Commands raise :class:`CliError` (bad input noticed by the CLI itself) or let a
:class:`~sluice.errors.SluiceError` from the backend or settings propagate; the
root group catches both, so no command needs its own try/except and users never
see a traceback for a mistake that is theirs (or their database's). Anything
else is a bug in Sluice and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperGroup

from sluice.cli.render import make_console
from sluice.errors import SluiceError


class CliError(Exception):
    """A mistake in how the CLI was called: printed as one line, exit code 1."""


def one_line(text: str) -> str:
    """Collapse a message onto one line (store errors can carry driver output)."""
    return " ".join(text.split())


def report_error(exc: BaseException) -> None:
    """Print ``Error: <message>`` on stderr."""
    make_console(stderr=True).print(
        f"Error: {one_line(str(exc)) or type(exc).__name__}", style="red", soft_wrap=True
    )


class SluiceGroup(TyperGroup):
    """The root command group: invokes the command, translating expected errors."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (CliError, SluiceError) as exc:
            report_error(exc)
            raise typer.Exit(1) from None
