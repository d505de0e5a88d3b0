"""A real worker process against a real Sluice server (``SLUICE_API_URL``): a run
end to end, and a cancellation through the server's API."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sluice.backend.http import HttpBackend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.settings import Settings
from sluice.states import StateType
from tests.server_process import ServerProcess
from tests.worker_helpers import WorkerProcess, state_names, wait_final, wait_for, write_project

pytestmark = pytest.mark.integration


@pytest.fixture
def client(api_server: ServerProcess, sluice_home: Path) -> Iterator[HttpBackend]:
    backend = HttpBackend(Settings(home=sluice_home, api_url=api_server.url))
    yield backend
    backend.close()


def test_a_worker_runs_and_cancels_runs_through_the_server(
    client: HttpBackend, api_server: ServerProcess, tmp_path: Path
) -> None:
    pool = f"srv-{uuid.uuid4().hex[:8]}"
    project = write_project(tmp_path / "project")
    for flow in ("hello", "sleeper"):
        DeploymentSpec(
            name=pool, entrypoint=f"flows.py:{flow}", working_dir=str(project),
            options={"work_pool_name": pool},
        ).apply(client)  # fmt: skip
    quick = run_deployment(f"hello/{pool}", {"n": 1}, timeout=0, backend=client)
    slow = run_deployment(f"sleeper/{pool}", {"seconds": 120}, timeout=0, backend=client)
    worker = WorkerProcess(
        pool, tmp_path / "worker.log", "--name", "remote", env={"SLUICE_API_URL": api_server.url}
    )
    try:
        done = wait_final(client, quick.id, 60, worker.log)
        assert done.state_type is StateType.COMPLETED and done.worker_name == "remote"
        assert state_names(client, quick.id) == ["Scheduled", "Pending", "Running", "Completed"]
        wait_for(lambda: client.read_flow_run(slow.id).state_type is StateType.RUNNING, 60, "start")
        client.cancel_flow_run(slow.id)
        cancelled = wait_final(client, slow.id, 30, worker.log)
        assert cancelled.state_type is StateType.CANCELLED, cancelled
        assert worker.terminate() == 0
    finally:
        worker.kill()
    workers: Any = client.list_workers(pool)
    assert [w.status for w in workers] == ["STOPPED"]
