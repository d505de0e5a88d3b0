"""A real ``sluice worker start`` subprocess resuming a deployment's run from a chosen task.

The flow's tasks append their name to a file each time they really execute,
so the file tells which calls were replayed from the journal (absent) and
which ran again (present).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.states import StateType
from tests.worker_helpers import WorkerProcess, wait_final

pytestmark = pytest.mark.integration

FLOWS = """
from pathlib import Path

from sluice import flow, task


def _count(folder: str, label: str) -> None:
    with open(Path(folder) / "calls.log", "a") as f:
        f.write(label + "\\n")


@task
def load(folder: str) -> int:
    _count(folder, "load")
    return 1


@task
def transform(folder: str, x: int) -> int:
    _count(folder, "transform")
    return x + 1


@task
def publish(folder: str, x: int) -> int:
    _count(folder, "publish")
    if Path(folder, "FAIL").exists():
        raise RuntimeError("the FAIL file is there")
    return x * 10


@flow
def pipeline(folder: str) -> int:
    return publish(folder, transform(folder, transform(folder, load(folder))))
"""


@pytest.fixture
def backend() -> Iterator[Any]:
    yield get_backend()
    close_backends()


@pytest.fixture
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "flows.py").write_text(FLOWS)
    return folder


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[WorkerProcess]:
    process = WorkerProcess("pool", tmp_path / "worker.log", "--poll-interval", "0.2")
    yield process
    process.kill()


def calls(project: Path) -> list[str]:
    return (project / "calls.log").read_text().split()


def test_a_worker_resumes_a_run_from_the_task_asked_for(
    project: Path, backend: Any, worker: WorkerProcess
) -> None:
    DeploymentSpec(
        name="dev",
        entrypoint="flows.py:pipeline",
        working_dir=str(project),
        options={"work_pool_name": "pool"},
    ).apply()
    (project / "FAIL").touch()
    run = run_deployment("pipeline/dev", {"folder": str(project)}, timeout=0)
    failed = wait_final(backend, run.id, 60, worker.log)
    assert failed.state_type is StateType.FAILED, failed
    assert calls(project) == ["load", "transform", "transform", "publish"]

    # Every call of transform (a name alone) runs again; load is replayed.
    backend.resume_flow_run(run.id, from_task="transform")
    again = wait_final(backend, run.id, 60, worker.log)
    assert again.state_type is StateType.FAILED and again.run_count == 2, again
    assert calls(project)[4:] == ["transform", "transform", "publish"]

    # From the second call of transform: load and the first transform are replayed.
    (project / "FAIL").unlink()
    backend.resume_flow_run(run.id, from_task="transform:1")
    done = wait_final(backend, run.id, 60, worker.log)
    assert done.state_type is StateType.COMPLETED and done.run_count == 3, done
    assert calls(project)[7:] == ["transform", "publish"]
    from sluice.deployments.run import DeploymentRun

    assert DeploymentRun(done).state.result() == 30
    latest = {t.task_key: t.state_name for t in backend.read_task_runs(run.id)}
    assert latest["load:0"] == "Replayed" and latest["transform:0"] == "Replayed"
    assert latest["transform:1"] == "Completed" and latest["publish:0"] == "Completed"
