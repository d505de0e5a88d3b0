"""``sluice run FILE.py:FLOW``: runs the real engine in-process, and via the console script."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sluice.backend.factory import close_backends
from sluice.cli.main import app

runner = CliRunner()
SLUICE = Path(sys.executable).with_name("sluice")
RUN_LINE = re.compile(r"Flow run '([a-z-]+)' \(([0-9a-f-]{36})\) finished in state (\w+)")

FLOWS = """
import asyncio
from sluice import flow, task

@task
def double(x: int) -> int:
    return 2 * x

@flow
def summed(n: int, label: str = "x") -> int:
    return sum(double(i) for i in range(n))

@flow(name="broken-flow")
def broken(n: int = 1) -> int:
    raise ValueError(f"boom {n}")

@flow
async def async_flow(n: int = 1) -> int:
    await asyncio.sleep(0)
    return n

def plain():
    return 1
"""


@pytest.fixture(autouse=True)
def isolated_imports(tmp_path: Path) -> Iterator[None]:
    """Loading a flow file adds a module and a sys.path entry; undo both.

    Only modules loaded from this test's folder are dropped: unloading library
    modules imported lazily during the test (SQLAlchemy's) would break them.
    """
    path = list(sys.path)
    yield
    close_backends()
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]
    sys.path[:] = path


@pytest.fixture
def flow_file(tmp_path: Path) -> Path:
    path = tmp_path / "cli_run_flows.py"
    path.write_text(FLOWS)
    return path


def invoke(*args: str) -> Result:
    return runner.invoke(app, list(args))


def test_run_completed_flow_records_parsed_params(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:summed", "--param", "n=3", "--param", "label=abc")
    assert result.exit_code == 0, result.output
    match = RUN_LINE.search(result.stdout)
    assert match and match.group(3) == "Completed", result.stdout
    run_id = match.group(2)

    inspected = json.loads(invoke("flow-run", "inspect", run_id[:8], "-o", "json").stdout)
    assert inspected["flow_run"]["parameters"] == {"n": 3, "label": "abc"}
    assert inspected["flow_run"]["state_type"] == "COMPLETED"
    assert [t["task_key"] for t in inspected["task_runs"]] == ["double:0", "double:1", "double:2"]


def test_run_params_json_and_pairs(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:summed", "--params", '{"n": 1, "label": "j"}', "-p", "n=2")
    assert result.exit_code == 0, result.output
    run_id = RUN_LINE.search(result.stdout).group(2)  # type: ignore[union-attr]
    data = json.loads(invoke("flow-run", "inspect", run_id, "-o", "json").stdout)
    assert data["flow_run"]["parameters"] == {"n": 2, "label": "j"}


def test_run_failed_flow_exits_1_with_state_and_message(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:broken", "--param", "n=5")
    assert result.exit_code == 1
    match = RUN_LINE.search(result.stdout)
    assert match and match.group(3) == "Failed", result.stdout
    assert "boom 5" in result.stdout
    listed = json.loads(invoke("flow-run", "ls", "-f", "broken-flow", "-o", "json").stdout)
    assert [r["id"] for r in listed] == [match.group(2)]


def test_run_async_flow(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:async_flow", "-p", "n=4")
    assert result.exit_code == 0, result.output
    assert "finished in state Completed" in result.stdout


def test_run_invalid_parameters_is_one_line_error(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:summed", "--param", "n=abc")
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1
    assert errors[0].startswith("Error: Invalid parameters for flow 'summed': n:")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("{file}:plain", "is a function, not a flow"),
        ("{file}:missing", "has no attribute 'missing'"),
        ("{dir}/nope.py:summed", "nope.py' not found"),
        ("{file}", "expected path/to/file.py:flow_function"),
    ],
)
def test_run_bad_entrypoint_is_one_line_error(flow_file: Path, target: str, message: str) -> None:
    entrypoint = target.format(file=flow_file, dir=flow_file.parent)
    result = invoke("run", entrypoint)
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1


def test_run_bad_param_syntax(flow_file: Path) -> None:
    result = invoke("run", f"{flow_file}:summed", "--param", "n")
    assert result.exit_code == 1
    assert result.stderr == "Error: invalid --param 'n'; expected key=value\n"


@pytest.mark.integration
def test_run_through_console_script(flow_file: Path) -> None:
    env = dict(os.environ)
    done = subprocess.run(
        [str(SLUICE), "run", f"{flow_file}:summed", "--param", "n=2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    match = RUN_LINE.search(done.stdout)
    assert match and match.group(3) == "Completed"
    # A second process sees the run the first one recorded.
    shown = subprocess.run(
        [str(SLUICE), "flow-run", "inspect", match.group(2), "-o", "json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["flow_run"]["parameters"] == {"n": 2, "label": "x"}

    failed = subprocess.run(
        [str(SLUICE), "run", f"{flow_file}:broken"], capture_output=True, text=True, env=env
    )
    assert failed.returncode == 1
    assert "finished in state Failed" in failed.stdout
