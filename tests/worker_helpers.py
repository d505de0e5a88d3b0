"""Real worker processes for tests: a project of flows, ``sluice worker start`` subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from sluice.schemas import FlowRunRecord
from sluice.states import TERMINAL_TYPES

T = TypeVar("T")

FLOWS = '''
import os
import time
from pathlib import Path

from sluice import flow, task


@task
def mark(folder: str, name: str) -> str:
    with open(os.path.join(folder, "executions.log"), "a") as f:
        f.write(name + "\\n")
    return name


@flow
def hello(n: int = 1) -> int:
    return n + 1


@flow
def record(folder: str, tag: str = "x") -> str:
    from sluice import runtime
    return mark(folder, str(runtime.flow_run.id))


@flow
def sleeper(seconds: float = 60.0) -> str:
    time.sleep(seconds)
    return "slept"


@flow
def gated(folder: str) -> str:
    """Marks once (a task), then waits while the file HOLD exists."""
    mark(folder, "before-hold")
    while Path(folder, "HOLD").exists():
        time.sleep(0.05)
    return "released"


@flow
def spans(folder: str, seconds: float = 1.0) -> float:
    start = time.time()
    time.sleep(seconds)
    return start
'''

BROKEN = """
import this_module_does_not_exist
"""


def write_project(folder: Path) -> Path:
    """A project folder with ``flows.py`` and ``broken.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "flows.py").write_text(FLOWS)
    (folder / "broken.py").write_text(BROKEN)
    return folder


def worker_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This test's environment (SLUICE_HOME and friends) for a subprocess."""
    env = dict(os.environ)
    env.update(extra or {})
    return env


class WorkerProcess:
    """``python -m sluice worker start --pool POOL ...`` in a subprocess, output to a file."""

    def __init__(
        self,
        pool: str,
        log_path: Path,
        *args: str,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = log_path
        command = [sys.executable, "-m", "sluice", "worker", "start", "--pool", pool, *args]
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(
                command,
                env=worker_env(env),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait; the exit status."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()
            raise AssertionError(f"worker did not stop in {timeout} s:\n{self.log()}") from None

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()


def wait_for(check: Callable[[], T | None], timeout: float, what: str, poll: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_final(
    backend: Any, run_id: str, timeout: float, log: Callable[[], str] = str
) -> FlowRunRecord:
    """The run once it is in a final state."""

    def final() -> FlowRunRecord | None:
        run: FlowRunRecord = backend.read_flow_run(run_id)
        return run if run.state_type in TERMINAL_TYPES else None

    try:
        return wait_for(final, timeout, f"flow run {run_id} to finish")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; run is {backend.read_flow_run(run_id)}\n{log()}") from None


def state_names(backend: Any, run_id: str) -> list[str]:
    return [s.name for s in backend.read_states(run_id)]
