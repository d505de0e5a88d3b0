"""``sluice flow-run resume ID [--from TASK[:INDEX]]``: continue a failed run as the same run."""

from __future__ import annotations

from typing import Annotated

import typer

from sluice.cli.errors import CliError
from sluice.cli.render import make_console, state_text


def resume_run(
    run_id: Annotated[str, typer.Argument(help="Flow run id, or a unique prefix of one.")],
    from_task: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Re-execute from this task (NAME or NAME:INDEX) onwards; "
            "calls before it are replayed from the journal.",
        ),
    ] = None,
) -> None:
    """Run a Failed, Crashed or Cancelled flow run again as the same run.

    Task runs that completed before are replayed from the journal (their
    stored results are returned without calling them); the rest execute.
    """
    from rich.text import Text

    from sluice.engine.resume import NotResumableError, resume_flow_run

    try:
        state = resume_flow_run(run_id, from_task=from_task)
    except NotResumableError as exc:
        raise CliError(str(exc)) from None
    line = Text(f"Flow run {state.run_id} finished in state ")
    line.append_text(state_text(state.type, state.name))
    if state.message and not state.is_completed():
        line.append(f": {state.message}")
    make_console().print(line, soft_wrap=True)
    if not state.is_completed():
        raise typer.Exit(1)
