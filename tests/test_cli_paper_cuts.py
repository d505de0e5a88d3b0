"""CLI paper cuts: help text kept verbatim, piped progress, bad names, reset on a terminal,
the next ticks of a deployment's schedules."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import pty
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sluice.backend.factory import close_backends, get_backend
from sluice.cli.main import app
from sluice.deployments.specs import DeploymentSpec
from sluice.schemas import FlowRecord
from tests.server_process import ServerProcess
from tests.worker_helpers import WorkerProcess, write_project

runner = CliRunner()
SLUICE = Path(sys.executable).with_name("sluice")


@pytest.fixture(autouse=True)
def closed_backends() -> Iterator[None]:
    yield
    close_backends()


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The installed console script, output to pipes (not a terminal)."""
    return subprocess.run(
        [str(SLUICE), *args], capture_output=True, text=True, env=env or dict(os.environ),
        stdin=subprocess.DEVNULL, timeout=120,
    )  # fmt: skip


# -- --help keeps brackets ----------------------------------------------------------------


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[Any, ...]]:
    # Typer builds on its own copy of click: groups are told apart by their commands.
    for name, command in group.commands.items():
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def test_every_help_text_with_brackets_shows_them() -> None:
    root = typer.main.get_command(app)
    checked = 0
    for path, command in _commands(root):
        texts = [command.help or ""] + [getattr(p, "help", None) or "" for p in command.params]
        fragments = [f for text in texts for f in re.findall(r"\[[^\]]+\]", text)]
        if not fragments:
            continue
        shown = " ".join(runner.invoke(app, [*path, "--help"]).output.split())
        for fragment in fragments:
            checked += 1
            assert " ".join(fragment.split()) in shown, (path, fragment)
    assert checked >= 1
    backfill_help = runner.invoke(app, ["deployment", "backfill", "--help"]).output
    assert "tick in [start, end]" in " ".join(backfill_help.split())


# -- backfill through a pipe --------------------------------------------------------------


@pytest.mark.integration
def test_a_piped_backfill_prints_plain_progress_lines(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    spec = DeploymentSpec(
        name="dev", entrypoint="flows.py:hello", working_dir=str(project),
        options={"work_pool_name": "pool", "cron": "0 6 * * *"},
    )  # fmt: skip
    spec.apply()
    close_backends()
    worker = WorkerProcess("pool", tmp_path / "worker.log")
    try:
        done = run_cli("deployment", "backfill", "hello/dev", "--start", "2024-01-01",
                       "--end", "2024-01-02")  # fmt: skip
    finally:
        worker.kill()
    assert done.returncode == 0, (done.stdout, done.stderr, worker.log())
    assert "[progress" not in done.stdout and "\x1b[" not in done.stdout
    lines = done.stdout.splitlines()
    assert "Backfill hello/dev: 2/2 runs finished" in lines
    assert lines[-1] == "Backfill of hello/dev: 2 runs finished, 0 not completed."


# -- names that cannot be ---------------------------------------------------------------------


BAD_NAMES = [
    (["work-pool", "create", ""], "a work pool's name must not be empty"),
    (["work-pool", "create", "   "], "a work pool's name must not be empty"),
    (["work-pool", "create", " etl"], "must not start or end with whitespace"),
    (["work-pool", "create", "a/b"], "must not contain '/'"),
    (["work-pool", "create", "a\nb"], "must not contain control characters"),
    (["work-queue", "create", "", "--pool", "default"], "a work queue's name must not be empty"),
    (["work-queue", "create", "q/1", "--pool", "default"], "must not contain '/'"),
]


def _one_line_error(result: Any, message: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("Error: "), result.stderr
    assert message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


@pytest.mark.parametrize(("args", "message"), BAD_NAMES)
def test_bad_names_are_one_line_errors(args: list[str], message: str) -> None:
    runner.invoke(app, ["work-pool", "create", "default"])
    _one_line_error(runner.invoke(app, args), message)
    pools = [p.name for p in get_backend().list_work_pools()]  # type: ignore[attr-defined]
    assert pools == ["default"]


@pytest.mark.integration
def test_bad_names_are_one_line_errors_through_a_server(
    api_server: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLUICE_API_URL", api_server.url)
    for args, message in BAD_NAMES[:5]:
        _one_line_error(runner.invoke(app, args), message)


def test_a_deployment_name_is_checked_the_same_way(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    for name, message in [(" dev", "whitespace"), ("a/b", "'/'"), ("a\tb", "control")]:
        spec = DeploymentSpec(name=name, entrypoint="flows.py:hello", working_dir=str(project))
        with pytest.raises(ValueError, match=message):
            spec.apply()


# -- database reset on a terminal --------------------------------------------------------------


def _on_a_terminal(args: list[str], answer: bytes | None) -> tuple[int, str]:
    """Run the CLI with a pseudo-terminal as stdin/stdout/stderr; type ``answer`` at
    its prompt. The exit status and everything it wrote."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([str(SLUICE), *args], stdin=slave, stdout=slave, stderr=slave,
                            env=dict(os.environ), close_fds=True)  # fmt: skip
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + 60
    answered = answer is None
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[y/N]" in seen and answer is not None:
            os.write(master, answer)
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(30)
    os.close(master)
    return code, seen.decode(errors="replace")


@pytest.mark.integration
@pytest.mark.parametrize(("answer", "kept"), [(b"n\n", True), (b"y\n", False)])
def test_reset_asks_on_a_terminal(answer: bytes, kept: bool) -> None:
    get_backend().write_flow(FlowRecord("kept-or-not"))
    close_backends()
    code, seen = _on_a_terminal(["server", "database", "reset"], answer)
    assert "Reset the database" in seen and "[y/N]" in seen, seen
    names = [f.name for f in get_backend().list_flows()]  # type: ignore[attr-defined]
    if kept:
        assert code == 1 and "Nothing was reset" in seen
        assert names == ["kept-or-not"]
    else:
        assert code == 0 and "was reset" in seen
        assert names == []


def test_reset_without_a_terminal_refuses_as_before() -> None:
    get_backend().write_flow(FlowRecord("kept"))
    close_backends()
    done = run_cli("server", "database", "reset")
    assert done.returncode == 1
    refusal = "Error: This deletes every flow, run and log; pass --yes to confirm"
    assert done.stderr.strip() == refusal
    assert [f.name for f in get_backend().list_flows()] == ["kept"]  # type: ignore[attr-defined]


# -- the next ticks of a deployment ---------------------------------------------------------


def test_inspect_shows_the_next_ticks_of_a_daily_cron(tmp_path: Path) -> None:
    project = write_project(tmp_path / "project")
    DeploymentSpec(
        name="dev", entrypoint="flows.py:hello", working_dir=str(project),
        options={"cron": "30 6 * * *", "timezone": "Europe/London"},
    ).apply()  # fmt: skip
    result = runner.invoke(app, ["deployment", "inspect", "hello/dev"])
    assert result.exit_code == 0, result.output
    assert "Next runs of the schedules" in result.output
    rows = re.findall(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  .*06:30 (GMT|BST)", result.output, re.M)
    assert len(rows) == 5, result.output
    times = [dt.datetime.fromisoformat(r[0]).replace(tzinfo=dt.timezone.utc) for r in rows]
    now = dt.datetime.now(dt.timezone.utc)
    assert now < times[0] <= now + dt.timedelta(days=1, hours=1)
    days = (dt.timedelta(days=1), dt.timedelta(hours=23), dt.timedelta(hours=25))
    assert all(b - a in days for a, b in itertools.pairwise(times))
    assert "not created yet" in result.output
    data = runner.invoke(app, ["deployment", "inspect", "hello/dev", "-o", "json"]).stdout
    assert len(json.loads(data)["next_ticks"]) == 5
