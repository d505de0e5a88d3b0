"""``sluice config view|set|unset`` and ``sluice version`` against a real home folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.cli.config_file import dumps_toml
from sluice.cli.main import app, redact_url
from sluice.settings import load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

runner = CliRunner()


def view_json() -> dict[str, dict[str, object]]:
    result = runner.invoke(app, ["config", "view", "-o", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_view_shows_defaults_and_sources(sluice_home: Path) -> None:
    data = view_json()
    assert data["config_file"] == str(sluice_home / "config.toml")
    assert data["settings"]["logging.level"] == "INFO"
    assert data["sources"]["logging.level"] == "default"
    assert data["sources"]["home"] == "env SLUICE_HOME"
    # The URL actually used is shown, not the empty "use the default" value.
    assert data["settings"]["database_url"] == f"sqlite:///{sluice_home / 'sluice.db'}"


def test_set_then_view_round_trip(sluice_home: Path) -> None:
    for key, value in [
        ("logging.level", "DEBUG"),
        ("database_url", "sqlite:////tmp/other.db"),
        ("api.url", "http://127.0.0.1:4200/api"),
        ("store.batch_size", "500"),
        ("logging.task_state_lines", "off"),
    ]:
        result = runner.invoke(app, ["config", "set", key, value])
        assert result.exit_code == 0, result.output
        assert "Set " in result.stdout

    data = view_json()
    assert data["settings"]["logging.level"] == "DEBUG"
    assert data["settings"]["api_url"] == "http://127.0.0.1:4200/api"
    assert data["sources"]["logging.level"] == "config file"

    # The file is real TOML with typed values, in the layout load_settings reads.
    stored = tomllib.loads((sluice_home / "config.toml").read_text())
    assert stored == {
        "database_url": "sqlite:////tmp/other.db",
        "api_url": "http://127.0.0.1:4200/api",
        "logging": {"level": "DEBUG", "task_state_lines": False},
        "store": {"batch_size": 500},
    }
    settings = load_settings()
    assert settings.logging.level == "DEBUG"
    assert settings.store.batch_size == 500
    assert settings.logging.task_state_lines is False

    table = runner.invoke(app, ["config", "view"])
    assert table.exit_code == 0
    assert "logging.level" in table.stdout and "DEBUG" in table.stdout
    assert "config file" in table.stdout


def test_unset_returns_to_default_and_drops_empty_table(sluice_home: Path) -> None:
    runner.invoke(app, ["config", "set", "logging.level", "WARNING"])
    result = runner.invoke(app, ["config", "unset", "SLUICE_LOGGING_LEVEL"])
    assert result.exit_code == 0, result.output
    assert tomllib.loads((sluice_home / "config.toml").read_text()) == {}
    assert view_json()["sources"]["logging.level"] == "default"

    again = runner.invoke(app, ["config", "unset", "logging.level"])
    assert again.exit_code == 0
    assert "is not set" in again.stdout


def test_set_keeps_other_keys_and_env_wins(
    sluice_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sluice_home.mkdir(parents=True)
    (sluice_home / "config.toml").write_text(
        'heartbeat_interval = 5.0\n[logging]\nstore_level = "ERROR"\n'
    )
    monkeypatch.setenv("SLUICE_LOGGING_LEVEL", "DEBUG")
    result = runner.invoke(app, ["config", "set", "logging.level", "WARNING"])
    assert result.exit_code == 0
    assert "overrides the config file" in result.stderr
    stored = tomllib.loads((sluice_home / "config.toml").read_text())
    assert stored == {
        "heartbeat_interval": 5.0,
        "logging": {"store_level": "ERROR", "level": "WARNING"},
    }
    data = view_json()
    assert data["settings"]["logging.level"] == "DEBUG"
    assert data["sources"]["logging.level"] == "env SLUICE_LOGGING_LEVEL"


def test_api_key_is_masked(sluice_home: Path) -> None:
    runner.invoke(app, ["config", "set", "api_key", "sk-very-secret-1234"])
    data = view_json()
    assert data["settings"]["api_key"] == "****1234"
    assert "very-secret" not in runner.invoke(app, ["config", "view"]).stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["config", "set", "nope", "1"], "unknown setting 'nope'"),
        (
            ["config", "set", "store.batch_size", "many"],
            "invalid value 'many' for store.batch_size",
        ),
        (["config", "set", "logging.task_state_lines", "maybe"], "expected true or false"),
        (["config", "set", "home", "/x"], "SLUICE_HOME"),
        (["config", "unset", "nope"], "unknown setting"),
    ],
)
def test_bad_keys_and_values_are_one_line_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ")
    assert message in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


def test_broken_config_file_is_one_line_error(sluice_home: Path) -> None:
    sluice_home.mkdir(parents=True)
    (sluice_home / "config.toml").write_text("this is = = not toml\n")
    for args in (["config", "view"], ["version"], ["config", "set", "api_url", "x"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, args
        assert result.stderr.startswith("Error: Cannot read config file")
        assert str(sluice_home / "config.toml") in result.stderr
        assert result.stderr.count("\n") == 1


def test_toml_writer_round_trips_awkward_values() -> None:
    data = {
        "plain": 'a "quoted" back\\slash\nnew line\ttab \x01 \x7f é',
        "n": -3,
        "f": 0.1,
        "flags": [True, False],
        "weird key": 1,
        "outer": {"inner": {"deep": "x"}, "v": 2},
        "empty": {},
    }
    assert tomllib.loads(dumps_toml(data)) == data


def test_version(sluice_home: Path) -> None:
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0, result.output
    for label in ("Sluice", "Python", "Database", "SQLAlchemy"):
        assert label in result.stdout
    assert str(sluice_home / "sluice.db") in result.stdout
    data = json.loads(runner.invoke(app, ["version", "-o", "json"]).stdout)
    assert data["version"] == "0.1.0"
    assert set(data) >= {"python", "database_url", "sqlalchemy"}


def test_redact_url() -> None:
    assert (
        redact_url("postgresql+psycopg://u:pw@host:5432/db")
        == "postgresql+psycopg://u:***@host:5432/db"
    )
    assert redact_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"
