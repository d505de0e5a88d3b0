"""``sluice config view|set|unset``: effective settings and the config file."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sluice.cli.backend import load_cli_settings
from sluice.cli.config_file import (
    SECRET_KEYS,
    coerce_value,
    get_in,
    read_config,
    remove_in,
    resolve_key,
    set_in,
    setting_keys,
    write_config,
)
from sluice.cli.render import OutputFormat, OutputOption, make_console, new_table, print_json
from sluice.settings import settings_as_dict

if TYPE_CHECKING:
    from sluice.settings import Settings

app = typer.Typer(help="View and change Sluice settings.", no_args_is_help=True)


def mask(value: Any) -> Any:
    """Hide all but the last 4 characters of a secret."""
    text = str(value)
    if not text:
        return text
    return "****" + text[-4:] if len(text) > 8 else "****"


def effective_settings(settings: Settings) -> list[tuple[str, Any, str]]:
    """``(key, value, source)`` for every setting; source is env, config file or default."""
    file_values = read_config(settings.config_path)
    rows: list[tuple[str, Any, str]] = [
        (
            "home",
            str(settings.home),
            "env SLUICE_HOME" if "SLUICE_HOME" in os.environ else "default",
        )
    ]
    for dotted, key in setting_keys().items():
        if dotted == "home":
            continue
        _, value = get_in(settings_tree(settings), key.path)
        if key.env_name in os.environ:
            source = f"env {key.env_name}"
        elif get_in(file_values, key.path)[0]:
            source = "config file"
        else:
            source = "default"
        if dotted == "database_url" and not value:
            value = settings.resolved_database_url  # what is actually used
        rows.append((dotted, mask(value) if dotted in SECRET_KEYS else value, source))
    return rows


def settings_tree(settings: Settings) -> dict[str, Any]:
    return settings_as_dict(settings)


@app.command("view")
def view(output: OutputOption = OutputFormat.table) -> None:
    """Show the effective settings and where each one came from."""
    settings = load_cli_settings()
    rows = effective_settings(settings)
    if output is OutputFormat.json:
        print_json(
            {
                "config_file": str(settings.config_path),
                "settings": {key: value for key, value, _ in rows},
                "sources": {key: source for key, _, source in rows},
            }
        )
        return
    console = make_console()
    table = new_table("setting", "value", "source", title=f"Config file: {settings.config_path}")
    for key, value, source in rows:
        table.add_row(key, str(value), source)
    console.print(table)


@app.command("set")
def set_value(
    key: Annotated[str, typer.Argument(help="Setting, e.g. logging.level or database_url.")],
    value: Annotated[str, typer.Argument(help="New value.")],
) -> None:
    """Store a setting in $SLUICE_HOME/config.toml."""
    settings = load_cli_settings()
    setting = resolve_key(key)
    data = read_config(settings.config_path)
    set_in(data, setting.path, coerce_value(setting, value))
    write_config(settings.config_path, data)
    console = make_console()
    shown = mask(value) if setting.dotted in SECRET_KEYS else value
    console.print(f"Set {setting.dotted} = {shown} in {settings.config_path}", soft_wrap=True)
    _warn_if_env_overrides(setting.env_name)


@app.command("unset")
def unset_value(
    key: Annotated[str, typer.Argument(help="Setting to remove, e.g. logging.level.")],
) -> None:
    """Remove a setting from $SLUICE_HOME/config.toml (back to its default)."""
    settings = load_cli_settings()
    setting = resolve_key(key)
    data = read_config(settings.config_path)
    console = make_console()
    if not remove_in(data, setting.path):
        console.print(f"{setting.dotted} is not set in {settings.config_path}", soft_wrap=True)
        return
    write_config(settings.config_path, data)
    console.print(f"Unset {setting.dotted} in {settings.config_path}", soft_wrap=True)
    _warn_if_env_overrides(setting.env_name)


def _warn_if_env_overrides(env_name: str) -> None:
    # The environment beats the file: say so, or the change looks like it did nothing.
    if env_name in os.environ:
        make_console(stderr=True).print(
            f"Note: {env_name} is set in the environment and overrides the config file.",
            style="yellow",
            soft_wrap=True,
        )
