"""State-change hooks as Prefect documents them.

``on_running`` (flows and tasks), ``on_completion``, ``on_failure`` and, on
flows, ``on_crashed`` and ``on_cancellation``; hooks given as functions,
``functools.partial`` objects, ``async`` functions, or added with the
decorator form (``@my_flow.on_failure``). A hook that raises is logged and
leaves the run's state as it is.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice import flow, task
from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.states import State, StateType
from tests.helpers import log_text, only_flow_run
from tests.worker_helpers import WorkerProcess, wait_final, wait_for, worker_env

CALLS: list[str] = []


def note(subject: Any, run: Any, state: State, channel: str = "log") -> None:
    CALLS.append(f"{channel}: {subject.name} {state.name}")


@pytest.fixture(autouse=True)
def _clear() -> None:
    CALLS.clear()


def test_on_running_hooks_are_called_on_every_attempt() -> None:
    attempts: list[int] = []

    @task(
        retries=1,
        on_running=[functools.partial(note, channel="task running")],
        on_completion=[functools.partial(note, channel="task done")],
    )
    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return "ok"

    @flow(
        on_running=[functools.partial(note, channel="flow running")],
        on_completion=[functools.partial(note, channel="flow done")],
    )
    def watched() -> str:
        return flaky()

    assert watched() == "ok"
    assert CALLS == [
        "flow running: watched Running",
        "task running: flaky Running",
        "task running: flaky Retrying",
        "task done: flaky Completed",
        "flow done: watched Completed",
    ]


def test_partial_async_and_decorator_hooks() -> None:
    async def send(subject: Any, run: Any, state: State, channel: str) -> None:
        CALLS.append(f"{channel} (async): {subject.name} {state.name} {run.id == state.run_id}")

    @task(on_failure=[functools.partial(send, channel="pager")])
    def risky() -> None:
        raise ValueError("broken")

    @flow(on_failure=[functools.partial(note, channel="slack")])
    def nightly() -> None:
        risky()

    @nightly.on_failure
    def also_email(flow: Any, flow_run: Any, state: State) -> None:
        CALLS.append(f"email: {flow.name} {state.message}")

    assert nightly(return_state=True).is_failed()
    assert CALLS == [
        "pager (async): risky Failed True",
        "slack: nightly Failed",
        "email: nightly Flow run encountered an exception ValueError: broken",
    ]
    assert also_email in nightly.on_failure


def test_a_raising_hook_is_logged_and_changes_nothing() -> None:
    def broken_hook(flow: Any, flow_run: Any, state: State, where: str) -> None:
        raise RuntimeError(f"cannot reach {where}")

    @flow(
        on_running=[functools.partial(broken_hook, where="the status page")],
        on_completion=[functools.partial(broken_hook, where="the chat")],
    )
    def resilient() -> int:
        return 7

    assert resilient() == 7
    run = only_flow_run("resilient")
    assert run.state_type is StateType.COMPLETED
    text = log_text(run.id)
    assert "Hook 'test_a_raising_hook_is_logged_and_changes_nothing.<locals>.broken_hook'" in text
    assert "cannot reach the status page" in text and "cannot reach the chat" in text


def test_an_engine_failure_crashes_the_run_and_calls_on_crashed_only() -> None:
    from sluice.task_runners import ThreadPoolTaskRunner

    class BrokenRunner(ThreadPoolTaskRunner):
        def start(self) -> None:
            raise OSError("no threads left")

        def duplicate(self) -> BrokenRunner:
            return BrokenRunner()

    @flow(
        task_runner=BrokenRunner(),
        on_running=[functools.partial(note, channel="running")],
        on_crashed=[functools.partial(note, channel="crashed")],
        on_failure=[functools.partial(note, channel="failed")],
    )
    def never_starts() -> None: ...

    with pytest.raises(OSError, match="no threads left"):
        never_starts()
    assert CALLS == ["crashed: never_starts Crashed"]
    assert only_flow_run("never_starts").state_type is StateType.CRASHED


HOOKED_FLOWS = """
import time
from pathlib import Path

from sluice import flow, task

HERE = Path(__file__).parent


def write(name):
    def hook(flow, flow_run, state):
        HERE.joinpath(name).write_text(f"{state.type.value} {state.name}")
    return hook


@task
def wait_a_long_time(seconds: float) -> str:
    HERE.joinpath("task-started").write_text("yes")
    time.sleep(seconds)
    return "done"


@flow(
    on_running=[write("on_running")],
    on_cancellation=[write("on_cancellation")],
    on_crashed=[write("on_crashed")],
    on_failure=[write("on_failure")],
    on_completion=[write("on_completion")],
)
def long_job(seconds: float = 120.0) -> str:
    return wait_a_long_time(seconds)


if __name__ == "__main__":
    long_job()
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(textwrap.dedent(HOOKED_FLOWS))
    return folder


@pytest.fixture
def backend() -> Iterator[Any]:
    yield get_backend()
    close_backends()


def hook_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.glob("on_*")}


@pytest.mark.integration
def test_sigterm_crashes_the_run_and_calls_on_crashed(project: Path, backend: Any) -> None:
    process = subprocess.Popen(
        [sys.executable, str(project / "flows.py")],
        env=worker_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(lambda: (project / "task-started").exists(), 60, "the task to start")
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 128 + signal.SIGTERM
    finally:
        if process.poll() is None:
            process.kill()
    assert hook_files(project) == {
        "on_running": "RUNNING Running",
        "on_crashed": "CRASHED Crashed",
    }
    assert only_flow_run("long_job").state_type is StateType.CRASHED


@pytest.mark.integration
def test_a_cancelled_worker_run_calls_on_cancellation(
    project: Path, backend: Any, tmp_path: Path
) -> None:
    DeploymentSpec(
        name="dev",
        entrypoint="flows.py:long_job",
        working_dir=str(project),
        options={"work_pool_name": "pool"},
    ).apply()
    run = run_deployment("long_job/dev", timeout=0)
    worker = WorkerProcess("pool", tmp_path / "worker.log")
    try:
        wait_for(lambda: (project / "task-started").exists(), 60, "the task to start")
        cancel = subprocess.run(
            [sys.executable, "-m", "sluice", "flow-run", "cancel", run.id],
            env=worker_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert cancel.returncode == 0, cancel.stderr
        done = wait_final(backend, run.id, 60, worker.log)
    finally:
        worker.kill()
    assert done.state_type is StateType.CANCELLED, done
    files = hook_files(project)
    assert files["on_running"] == "RUNNING Running"
    assert files["on_cancellation"].startswith("CANCELLED")
    assert "on_failure" not in files and "on_crashed" not in files, files
    assert os.path.exists(project / "task-started")
