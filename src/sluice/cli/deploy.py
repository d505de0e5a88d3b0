"""``sluice deploy FILE.py:FLOW --name N [--cron ...]`` and ``sluice deploy --all``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import cli_backend, entrypoint_of_known_flow
from sluice.cli.deployments import schedules_text
from sluice.cli.errors import CliError
from sluice.cli.render import make_console
from sluice.cli.run import parse_params

if TYPE_CHECKING:
    from sluice.deployments.specs import DeploymentSpec


def deploy_command(
    entrypoint: Annotated[
        str | None,
        typer.Argument(help="The flow: path/to/file.py:function (or a flow already run here)."),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="The deployment's name (FLOW/NAME).")
    ] = None,
    deploy_all: Annotated[
        bool, typer.Option("--all", help="Deploy every deployment of sluice.yaml.")
    ] = False,
    project_file: Annotated[
        Path | None, typer.Option("--file", help="The project file (default ./sluice.yaml).")
    ] = None,
    cron: Annotated[
        str | None, typer.Option("--cron", help='A cron schedule: "0 6 * * *".')
    ] = None,
    interval: Annotated[
        str | None, typer.Option("--interval", help="An interval schedule: 3600, 90s, 1h30m.")
    ] = None,
    anchor: Annotated[
        str | None, typer.Option("--anchor", help="When interval ticks are counted from (ISO).")
    ] = None,
    rrule: Annotated[str | None, typer.Option("--rrule", help="An RFC 5545 rule.")] = None,
    timezone: Annotated[
        str | None, typer.Option("--timezone", help="The schedule's time zone (default UTC).")
    ] = None,
    pool: Annotated[str, typer.Option("--pool", "-p", help="The work pool.")] = "default",
    queue: Annotated[str, typer.Option("--queue", "-q", help="The pool's queue.")] = "default",
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="A default parameter key=value (JSON values parsed)."),
    ] = None,
    params: Annotated[
        str | None, typer.Option("--params", help="Default parameters as a JSON object.")
    ] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="A tag.")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    version: Annotated[str | None, typer.Option("--version")] = None,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    concurrency_limit: Annotated[
        int | None, typer.Option("--concurrency-limit", min=0, help="Its runs at once, at most.")
    ] = None,
) -> None:
    """Create or update a deployment (re-deploying a name replaces its schedules).

    Without an entrypoint, deployments come from sluice.yaml: all of them
    (``--all``, or no argument) or the one named by ``--name``.
    """
    if entrypoint is None:
        specs = _from_project_file(project_file, name, deploy_all)
    else:
        if deploy_all:
            raise CliError("give either an entrypoint or --all, not both")
        if not name:
            raise CliError("--name is required: the deployment is named FLOW/NAME")
        spec = _spec_from_flags(entrypoint, name)
        spec.options.update(
            cron=cron, interval=interval, anchor_date=anchor, rrule=rrule, timezone=timezone,
            work_pool_name=pool, work_queue_name=queue, tags=tag, description=description,
            version=version, paused=paused, concurrency_limit=concurrency_limit,
        )  # fmt: skip
        flow = spec.load_flow()
        spec.options["parameters"] = coerce_to_schema(parse_params(param, params), flow)
        specs = [spec]
    for spec in specs:
        spec.load_flow()  # every entrypoint loads before anything is stored
    backend = cli_backend()
    console = make_console()
    for spec in specs:
        try:
            dep = spec.apply(backend)
        except ValueError as exc:  # ScheduleError is a SluiceError too and passes through
            raise CliError(f"deployment {spec.name!r}: {exc}") from None

        console.print(
            f"Deployed {dep.full_name} (pool {dep.work_pool_name}; schedules: "
            f"{schedules_text(dep)}). Run it: sluice deployment run '{dep.full_name}'"
        )


def _spec_from_flags(entrypoint: str, name: str) -> DeploymentSpec:
    from sluice.deployments.specs import DeploymentSpec

    if ":" not in entrypoint:
        entrypoint = entrypoint_of_known_flow(entrypoint)
    return DeploymentSpec(name=name, entrypoint=entrypoint, working_dir=str(Path.cwd()))


def _from_project_file(
    path: Path | None, name: str | None, deploy_all: bool
) -> list[DeploymentSpec]:
    from sluice.deployments.specs import PROJECT_FILE, find_project_file, load_project_file

    found = path if path is not None else find_project_file()
    if found is None or not found.is_file():
        where = path or PROJECT_FILE
        raise CliError(
            f"no entrypoint given and no {where} here; use sluice deploy path/to/file.py:flow "
            "--name NAME"
        )
    specs = load_project_file(found)
    if name is not None and not deploy_all:
        chosen = [s for s in specs if s.name == name]
        if not chosen:
            names = ", ".join(s.name for s in specs) or "none"
            raise CliError(f"no deployment named {name!r} in {found} (it has: {names})")
        return chosen
    return specs


def coerce_to_schema(values: dict[str, Any], flow: Any) -> dict[str, Any]:
    """``--param`` texts made to fit the flow's parameter types where the text says so
    (``True``/``false`` for booleans), so shell-style values work; others unchanged."""
    from sluice.deployments.parameters import parameter_schema_of

    props = parameter_schema_of(flow).get("properties", {})
    out = dict(values)
    for key, value in values.items():
        wanted = props.get(key, {}).get("type")
        if isinstance(value, str) and wanted == "boolean":
            lowered = value.strip().lower()
            if lowered in ("true", "yes", "1"):
                out[key] = True
            elif lowered in ("false", "no", "0"):
                out[key] = False
    return out


def build_command(
    entrypoint: Annotated[str, typer.Argument(help="The flow: path/to/file.py:function.")],
    name: Annotated[
        str | None, typer.Option("--name", "-n", help="Deployment name (default: the function's).")
    ] = None,
    cron: Annotated[str | None, typer.Option("--cron")] = None,
    interval: Annotated[str | None, typer.Option("--interval")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone")] = None,
    pool: Annotated[str | None, typer.Option("--pool", "-p")] = None,
    param: Annotated[list[str] | None, typer.Option("--param")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t")] = None,
    project_file: Annotated[Path | None, typer.Option("--file")] = None,
) -> None:
    """Add (or replace) a deployment in sluice.yaml without storing it; ``apply`` stores them."""
    from sluice.deployments.deploying import build_schedules
    from sluice.deployments.specs import PROJECT_FILE, DeploymentSpec, write_project_entry

    path = project_file or Path(PROJECT_FILE)
    chosen = name or entrypoint.rpartition(":")[2]
    spec = DeploymentSpec(name=chosen, entrypoint=entrypoint, working_dir=str(Path.cwd()))
    flow = spec.load_flow()
    build_schedules(cron=cron, interval=interval, timezone=timezone)  # checked, not kept
    entry: dict[str, Any] = {"name": chosen, "entrypoint": entrypoint}
    for key, value in (("cron", cron), ("interval", interval), ("timezone", timezone),
                       ("work_pool", pool)):  # fmt: skip
        if value is not None:
            entry[key] = value
    parameters = coerce_to_schema(parse_params(param, None), flow)
    if parameters:
        entry["parameters"] = parameters
    if tag:
        entry["tags"] = list(tag)
    write_project_entry(path, entry)
    make_console().print(
        f"Wrote deployment {chosen!r} to {path}; store it with: sluice deployment apply"
    )


def apply_command(
    project_file: Annotated[Path | None, typer.Option("--file")] = None,
) -> None:
    """Create or update every deployment of sluice.yaml (like ``sluice deploy --all``)."""
    deploy_command(
        entrypoint=None, name=None, deploy_all=True, project_file=project_file, cron=None,
        interval=None, anchor=None, rrule=None, timezone=None, pool="default", queue="default",
        param=None, params=None, tag=None, description=None, version=None, paused=False,
        concurrency_limit=None,
    )  # fmt: skip
