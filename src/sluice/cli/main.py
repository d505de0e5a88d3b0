"""The ``sluice`` application: command groups, ``sluice version``, and ``main()``.

Only Typer and our small modules are imported here; anything heavy (the store,
SQLAlchemy, the engine) is imported inside the command that needs it so that
``sluice --help`` starts fast.
"""

from __future__ import annotations

import re

import typer

from sluice.cli import config, deployments, flow_runs, flows, server, work_pools, workers
from sluice.cli.backend import load_cli_settings
from sluice.cli.deploy import apply_command, build_command, deploy_command
from sluice.cli.errors import SluiceGroup
from sluice.cli.render import OutputFormat, OutputOption, make_console, print_json, print_kv
from sluice.cli.run import run_flow
from sluice.distribution import DISTRIBUTION

app = typer.Typer(
    cls=SluiceGroup,
    name="sluice",
    help="Sluice: Python workflow orchestration. Inspect flows and runs, run flows, configure.",
    no_args_is_help=True,
    add_completion=False,
    # Expected errors are one-liners (see SluiceGroup); a real bug keeps the plain
    # Python traceback instead of Typer's boxed one, which is unreadable in logs.
    pretty_exceptions_enable=False,
    # Help texts are plain text: with Rich markup, "[start, end]" or "NAME[:INDEX]"
    # would be read as style tags and vanish from --help.
    rich_markup_mode=None,
)
app.add_typer(flows.app, name="flow")
app.add_typer(flow_runs.app, name="flow-run")
app.add_typer(config.app, name="config")
app.add_typer(server.app, name="server")
app.command("run")(run_flow)
app.add_typer(deployments.app, name="deployment")
app.add_typer(work_pools.pools_app, name="work-pool")
app.add_typer(work_pools.queues_app, name="work-queue")
app.add_typer(workers.app, name="worker")
app.command("deploy")(deploy_command)
deployments.app.command("build")(build_command)
deployments.app.command("apply")(apply_command)
flow_runs.app.command("cancel")(workers.cancel_run)
flow_runs.app.command("create")(deployments.create_flow_run)
flow_runs.app.command("execute", hidden=True)(workers.execute_run)


def redact_url(url: str) -> str:
    """A database URL with its password replaced by ``***``."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _version_of(distribution: str) -> str:
    # Package metadata, not ``import sqlalchemy``: importing it costs ~0.4 s.
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


@app.command("version")
def version_command(output: OutputOption = OutputFormat.table) -> None:
    """Show the Sluice, Python and SQLAlchemy versions and the database in use."""
    import platform

    settings = load_cli_settings()
    info = {
        "version": _version_of(DISTRIBUTION),
        "python": platform.python_version(),
        "database_url": redact_url(settings.resolved_database_url),
        "sqlalchemy": _version_of("sqlalchemy"),
    }
    if settings.api_url:
        info["api_url"] = settings.api_url
    if output is OutputFormat.json:
        print_json(info)
        return
    labels = {"version": "Sluice", "python": "Python", "database_url": "Database",
              "sqlalchemy": "SQLAlchemy", "api_url": "API URL"}  # fmt: skip
    print_kv(make_console(), [(labels[k], v) for k, v in info.items()])


def main() -> None:
    """Console entry point (``sluice``)."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
