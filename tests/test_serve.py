"""``flow.serve(...)`` and ``sluice.serve(...)`` in a real subprocess: schedules fire,
triggered runs execute, SIGINT/SIGTERM stop it cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sluice
from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import run_deployment
from sluice.states import StateType
from tests.worker_helpers import wait_final, wait_for

pytestmark = pytest.mark.integration

SCRIPT = """
import sys
import sluice
from sluice import flow


@flow
def tick(n: int = 0) -> int:
    return n


@flow
def other(word: str = "hi") -> str:
    return word


if __name__ == "__main__":
    if sys.argv[1] == "one":
        tick.serve(name="fast", interval=1, parameters={"n": 7})
    else:
        sluice.serve(
            tick.to_deployment("fast", interval=1),
            other.to_deployment("manual", parameters={"word": "x"}),
            limit=2,
        )
"""


@pytest.fixture
def backend() -> Iterator[Any]:
    yield get_backend()
    close_backends()


def start(tmp_path: Path, mode: str) -> subprocess.Popen[bytes]:
    script = tmp_path / "served.py"
    script.write_text(SCRIPT)
    with open(tmp_path / "serve.log", "ab") as log:
        return subprocess.Popen(
            [sys.executable, str(script), mode],
            cwd=tmp_path,
            env=dict(os.environ),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


def completed_runs(backend: Any, name: str, count: int) -> Any:
    def check() -> list[Any]:
        runs = backend.list_deployment_runs(name, state_types=[StateType.COMPLETED], limit=0)
        return runs if len(runs) >= count else []

    return check


def stop(process: subprocess.Popen[bytes], sig: signal.Signals, log: Path) -> int:
    process.send_signal(sig)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        raise AssertionError(f"serve did not stop:\n{log.read_text()}") from None


def test_flow_serve_runs_its_interval_schedule(backend: Any, tmp_path: Path) -> None:
    process = start(tmp_path, "one")
    try:
        runs = wait_for(lambda: _safe(completed_runs(backend, "tick/fast", 2)), 60, "2 runs")
    finally:
        code = stop(process, signal.SIGINT, tmp_path / "serve.log")
    assert code == 0, (tmp_path / "serve.log").read_text()
    assert all(r.parameters == {"n": 7} for r in runs)
    dep = backend.read_deployment("tick/fast")
    assert dep.work_pool_name == "serve"


def test_sluice_serve_runs_several_deployments_and_triggered_runs(
    backend: Any, tmp_path: Path
) -> None:
    process = start(tmp_path, "many")
    log = tmp_path / "serve.log"
    try:
        wait_for(lambda: _safe(lambda: backend.read_deployment("other/manual")), 60, "register")
        run = run_deployment("other/manual", {"word": "served"}, timeout=0)
        done = wait_final(backend, run.id, 60, log.read_text)
        assert done.state_type is StateType.COMPLETED
        wait_for(lambda: _safe(completed_runs(backend, "tick/fast", 1)), 60, "a scheduled run")
    finally:
        code = stop(process, signal.SIGTERM, log)
    assert code == 0, log.read_text()


def test_serve_needs_deployments() -> None:
    with pytest.raises(ValueError, match="at least one deployment"):
        sluice.serve()


def _safe(check: Any) -> Any:
    from sluice.errors import NotFoundError

    try:
        return check()
    except NotFoundError:
        return None
