"""``sluice run FILE.py:FLOW``: run a flow now, in this process."""

from __future__ import annotations

import datetime as _dt
import inspect
import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend, entrypoint_of_known_flow
from sluice.cli.errors import CliError
from sluice.cli.render import make_console, state_text
from sluice.errors import NotFoundError, ParameterValidationError
from sluice.schemas import FlowRunFilter
from sluice.states import State, StateType, utcnow

if TYPE_CHECKING:
    from sluice.flows import Flow
    from sluice.schemas import FlowRunRecord
    from sluice.states import State


def parse_value(raw: str) -> Any:
    """A parameter value: JSON when it parses (``3``, ``true``, ``[1,2]``), else the text."""
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_params(pairs: list[str] | None, params_json: str | None) -> dict[str, Any]:
    """Parameters from ``--params '{...}'`` then ``--param k=v`` (which win)."""
    params: dict[str, Any] = {}
    if params_json:
        try:
            loaded = json.loads(params_json)
        except ValueError as exc:
            raise CliError(f"--params is not valid JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CliError("--params must be a JSON object, like '{\"n\": 3}'")
        params.update(loaded)
    for pair in pairs or []:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"invalid --param {pair!r}; expected key=value")
        params[key.strip()] = parse_value(raw)
    return params


def run_flow(
    entrypoint: Annotated[
        str,
        typer.Argument(
            help="The flow to run: path/to/file.py:function, or the name of a flow that "
            "ran here before (its recorded entrypoint is used)."
        ),
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="A parameter as key=value (JSON values parsed)."),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="Parameters as a JSON object.")
    ] = None,
) -> None:
    """Run a flow now, in this process, and print its final state and run id."""
    from sluice.entrypoints import load_flow

    parameters = parse_params(param, params)
    if ":" not in entrypoint and not entrypoint.endswith(".py") and "/" not in entrypoint:
        entrypoint = entrypoint_of_known_flow(entrypoint)
    flow_obj = load_flow(entrypoint)
    started = utcnow()
    state = call_flow(flow_obj, parameters)
    run = find_run(flow_obj.name, started, state.run_id if state is not None else None)
    if _report(flow_obj, state, run) is not StateType.COMPLETED:
        raise typer.Exit(1)


def call_flow(flow_obj: Flow[..., Any], parameters: dict[str, Any]) -> State | None:
    """Call the flow and return its final state (None if it did not give one).

    ``return_state=True`` makes a failed flow hand back its Failed state instead
    of raising, so the CLI can report it; the engine has already logged the
    traceback. Parameter errors are raised before any run exists and stay errors.
    """
    import asyncio

    kwargs = dict(parameters)
    # A flow with its own ``return_state`` parameter gets the user's value instead.
    if "return_state" not in inspect.signature(flow_obj.fn).parameters:
        kwargs["return_state"] = True
    try:
        outcome = flow_obj(**kwargs)
        if inspect.isawaitable(outcome):
            outcome = asyncio.run(_await(outcome))
    except ParameterValidationError:
        raise
    except Exception:
        return None
    if isinstance(outcome, State):
        if isinstance(outcome.exception, ParameterValidationError):
            raise outcome.exception
        return outcome
    return None


async def _await(awaitable: Any) -> Any:
    return await awaitable


def find_run(
    flow_name: str, started: _dt.datetime, run_id: str | None = None
) -> FlowRunRecord | None:
    """The run this command just made: by the id on its final state when there is
    one, else the newest run of the flow created since ``started``."""
    backend = cli_backend()
    if run_id is not None:
        return backend.read_flow_run(run_id)
    try:
        name = backend.read_flow(flow_name).name
    except NotFoundError:
        return None  # the flow failed before recording anything
    runs = backend.list_flow_runs(FlowRunFilter(flow_name=name, limit=1))
    # Clocks of one machine: allow a little slack for timestamp rounding.
    if runs and runs[0].created >= started - _dt.timedelta(seconds=1):
        return runs[0]
    return None


def _report(flow_obj: Flow[..., Any], state: State | None, run: FlowRunRecord | None) -> StateType:
    """Print ``Flow run 'name' (id) finished in state X[: message]``; return X's type."""
    from rich.text import Text

    if state is not None:
        state_type, name, message = state.type, state.name, state.message
    elif run is not None:
        state_type, name, message = run.state_type, run.state_name, run.state_message
    else:
        raise CliError(f"flow {flow_obj.name!r} ended without recording a run")
    who = f"Flow run {run.name!r} ({run.id})" if run else f"Flow {flow_obj.name!r}"
    line = Text(f"{who} finished in state ")
    line.append_text(state_text(state_type, name))
    if message and state_type is not StateType.COMPLETED:
        line.append(f": {message}")
    make_console().print(line, soft_wrap=True)
    return state_type
