"""``sluice server start`` and ``sluice server database upgrade|reset``.

FastAPI and uvicorn are imported only by ``server start``; the database
commands need SQLAlchemy and Alembic alone.
"""

from __future__ import annotations

import dataclasses
import sys
from typing import Annotated

import typer

from sluice.cli.backend import load_cli_settings
from sluice.cli.errors import CliError
from sluice.cli.render import OutputFormat, OutputOption, make_console, print_json
from sluice.server.served_hosts import is_loopback

app = typer.Typer(help="Run the Sluice API server, and manage its database.", no_args_is_help=True)
database_app = typer.Typer(
    help="Check, upgrade or reset the Sluice database.", no_args_is_help=True
)
app.add_typer(database_app, name="database")


def check_bind(host: str, api_key: str, allow_unauthenticated: bool) -> None:
    """Refuse to expose an API without a key beyond this machine, unless told to.

    Raises:
        CliError: ``host`` is reachable from elsewhere and no key is set.
    """
    if api_key or allow_unauthenticated or is_loopback(host):
        return
    raise CliError(
        f"Refusing to serve on {host} without an API key: set SLUICE_API_KEY, "
        "or pass --allow-unauthenticated"
    )


@app.command("start")
def start(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 4200,
    allow_unauthenticated: Annotated[
        bool,
        typer.Option(help="Serve a non-loopback address without an API key (anyone can write)."),
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level.")] = "info",
) -> None:
    """Serve the web UI, the REST API (under /api) and its docs (/docs) until SIGINT/SIGTERM."""
    import signal

    settings = load_cli_settings()
    check_bind(host, settings.api_key, allow_unauthenticated)
    try:
        import uvicorn

        from sluice.server.app import create_app
    except ImportError as exc:
        from sluice.distribution import install_command

        raise CliError(
            "The server needs packages the plain install includes; reinstall Sluice: "
            f"{install_command()} ({exc})"
        ) from exc
    app_ = create_app(settings, host=host)
    # uvicorn shuts down cleanly on SIGINT/SIGTERM, then re-sends the signal
    # to the handler that was installed before it; a no-op one lets the command
    # return normally (exit 0) after a clean shutdown instead of dying by it.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: None)
    shown = f"[{host}]" if ":" in host else host
    make_console().print(f"Sluice UI: http://{shown}:{port}/  API: http://{shown}:{port}/api")
    uvicorn.run(app_, host=host, port=port, log_level=log_level.lower(), lifespan="on")


@database_app.command("upgrade")
def database_upgrade() -> None:
    """Upgrade the database to this Sluice's schema (creating it if needed)."""
    from sluice.backend.admin import upgrade_store

    label = upgrade_store(load_cli_settings().resolved_database_url)
    make_console().print(f"Database {label} is up to date.")


@database_app.command("check")
def database_check(
    quick: Annotated[
        bool, typer.Option("--quick", help="SQLite's quick_check (faster, fewer checks).")
    ] = False,
    output: OutputOption = OutputFormat.table,
) -> None:
    """Check the store and report its state in one line: where it is, its schema
    revision, row counts and the integrity check's verdict. Exit status 1 if it is
    damaged or unusable. Changes nothing (on SQLite the file is opened read-only)."""
    from sluice.backend.admin import check_store_health

    health = check_store_health(load_cli_settings().resolved_database_url, quick=quick)
    if output is OutputFormat.json:
        print_json({"ok": health.ok, **dataclasses.asdict(health)})
    else:
        make_console(stderr=not health.ok).print(health.line(), soft_wrap=True)
    if not health.ok:
        raise typer.Exit(1)


def confirm_reset(label: str) -> None:
    """Ask on the terminal whether to reset ``label``.

    Raises:
        CliError: no terminal to ask on (stdin or stdout is not one), or the answer was no.
    """
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise CliError("This deletes every flow, run and log; pass --yes to confirm")
    question = f"Reset the database {label}? This deletes every flow, run and log"
    if not typer.confirm(question, default=False):
        raise CliError(f"Nothing was reset: {label} is unchanged")


@database_app.command("reset")
def database_reset(
    yes: Annotated[bool, typer.Option("--yes", help="Confirm: every run is deleted.")] = False,
) -> None:
    """Drop every table and create an empty database (all history is lost).

    Without --yes it asks on a terminal, and refuses when there is none to ask on.
    """
    from sluice.backend.admin import reset_store, store_label

    url = load_cli_settings().resolved_database_url
    if not yes:
        confirm_reset(store_label(url))
    label = reset_store(url)
    make_console().print(f"Database {label} was reset.")
