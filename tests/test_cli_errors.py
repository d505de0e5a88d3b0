"""Errors are one line on stderr with exit code 1, through the real ``sluice`` script too."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sluice.backend.factory import close_backends, get_backend
from sluice.cli.main import app
from tests import cli_data

runner = CliRunner()
SLUICE = Path(sys.executable).with_name("sluice")


@pytest.fixture(autouse=True)
def closed_backends() -> Iterator[None]:
    yield
    close_backends()


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed console script, in a child process with this test's environment."""
    return subprocess.run(
        [str(SLUICE), *args], capture_output=True, text=True, env=dict(os.environ), timeout=60
    )


def corrupt_database(home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    db = home / "sluice.db"
    db.write_bytes(b"this is not a database, just garbage bytes\x00\x01\x02" * 200)
    return db


@pytest.mark.parametrize(
    "args",
    [
        ["flow-run", "ls"],
        ["flow-run", "inspect", "abc"],
        ["flow-run", "logs", "abc"],
        ["flow", "ls"],
        ["flow", "inspect", "x"],
    ],
)
def test_corrupt_database_is_one_line_naming_the_path(sluice_home: Path, args: list[str]) -> None:
    db = corrupt_database(sluice_home)
    result = runner.invoke(app, args)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ")
    assert str(db) in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.integration
def test_entry_point_help_and_version() -> None:
    help_result = run_cli("--help")
    assert help_result.returncode == 0, help_result.stderr
    for group in ("flow", "flow-run", "config", "run", "version"):
        assert group in help_result.stdout
    version = run_cli("version")
    assert version.returncode == 0, version.stderr
    assert "Sluice" in version.stdout and "0.1.0" in version.stdout


@pytest.mark.integration
def test_entry_point_errors_exit_1_without_traceback(sluice_home: Path) -> None:
    unknown = run_cli("flow-run", "inspect", "no-such-run")
    assert unknown.returncode == 1
    assert unknown.stderr == "Error: flow run 'no-such-run' not found\n"
    bad_state = run_cli("flow-run", "ls", "--state", "nope")
    assert bad_state.returncode == 1
    assert bad_state.stderr.startswith("Error: unknown state 'nope'; expected one of: ")
    db = corrupt_database(sluice_home)
    corrupt = run_cli("flow-run", "ls")
    assert corrupt.returncode == 1
    assert corrupt.stderr.count("\n") == 1 and str(db) in corrupt.stderr
    assert "Traceback" not in corrupt.stderr


@pytest.mark.integration
def test_entry_point_reads_what_another_process_wrote() -> None:
    cli_data.build(get_backend())
    close_backends()  # this process's writes are durable before the child reads
    result = run_cli("flow-run", "ls", "--flow-name", "etl-pipeline")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines[2:]] == [cli_data.RUN_FAILED, cli_data.RUN_OK]
    assert "\x1b[" not in result.stdout
    # Piped output keeps every row on one line, however long.
    assert all(len(line) < 200 for line in lines)
