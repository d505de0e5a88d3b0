"""Between a worker's claim and the flow's start: cancels are honoured, Running is stored.

Cancelling a Pending run ends it at once (nothing runs it yet); the
process the worker hands it to must not then start it, which would
overwrite Cancelled with Running and run the flow to the end. Once it
starts, its Running state is stored at once (not with the writer's next
batch), so a cancel from then on finds it Running and stops it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.states import StateType
from sluice.workers.payload import CONTROL_ENV, RunPayload, encode_payload

pytestmark = pytest.mark.integration

FLOWS = """
import time
from pathlib import Path

from sluice import flow


@flow
def touch(folder: str) -> str:
    Path(folder, "ran").touch()
    return "ran"


@flow
def wait_for_go(folder: str) -> str:
    while not Path(folder, "go").exists():
        time.sleep(0.02)
    return "went"
"""


def execute_claimed(payload: RunPayload) -> subprocess.CompletedProcess[bytes]:
    """What a worker does with a claimed run: a warm process, the run on its stdin."""
    return subprocess.run(
        [sys.executable, "-m", "sluice.workers.execute", "--warm"],
        input=encode_payload(payload),
        env={**os.environ, CONTROL_ENV: "stdin"},
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize("cancelled", [False, True])
def test_a_run_cancelled_between_claim_and_start_is_not_run(
    tmp_path: Path, cancelled: bool
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    deployment = DeploymentSpec(
        name="dev",
        entrypoint="flows.py:touch",
        working_dir=str(project),
        options={"work_pool_name": "pool"},
    ).apply()
    backend = get_backend()
    try:
        run = run_deployment("touch/dev", {"folder": str(project)}, timeout=0)
        (claimed,) = backend.claim_flow_runs("pool", worker_name="w1", limit=1)  # type: ignore[attr-defined]
        assert claimed.state_type is StateType.PENDING
        if cancelled:
            assert backend.cancel_flow_run(run.id).state_type is StateType.CANCELLED  # type: ignore[attr-defined]
        done = execute_claimed(RunPayload(claimed, deployment.entrypoint, deployment.working_dir))
        final = backend.read_flow_run(run.id)
    finally:
        close_backends()
    if cancelled:
        assert done.returncode == 1, done.stderr.decode()
        assert not (project / "ran").exists()
        assert final.state_type is StateType.CANCELLED, final
    else:
        assert done.returncode == 0, done.stderr.decode()
        assert (project / "ran").exists()
        assert final.state_type is StateType.COMPLETED, final


def test_a_started_worker_run_is_stored_running_before_the_writers_next_batch(
    tmp_path: Path,
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "flows.py").write_text(FLOWS)
    deployment = DeploymentSpec(
        name="dev",
        entrypoint="flows.py:wait_for_go",
        working_dir=str(project),
        options={"work_pool_name": "pool"},
    ).apply()
    backend = get_backend()
    try:
        run = run_deployment("wait-for-go/dev", {"folder": str(project)}, timeout=0)
        (claimed,) = backend.claim_flow_runs("pool", worker_name="w1", limit=1)  # type: ignore[attr-defined]
        payload = encode_payload(RunPayload(claimed, deployment.entrypoint, deployment.working_dir))
        # The writer would hold Running for 30 s: only the explicit store makes it visible.
        env = {**os.environ, CONTROL_ENV: "stdin", "SLUICE_STORE_FLUSH_INTERVAL": "30"}
        process = subprocess.Popen(
            [sys.executable, "-m", "sluice.workers.execute", "--warm"],
            stdin=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        with process:
            try:
                assert process.stdin is not None
                process.stdin.write(payload)
                process.stdin.flush()
                deadline = time.monotonic() + 20
                while backend.read_flow_run(run.id).state_type is not StateType.RUNNING:
                    assert process.poll() is None and time.monotonic() < deadline, "never Running"
                    time.sleep(0.05)
                (project / "go").touch()
                _, stderr = process.communicate(timeout=60)
            finally:
                process.kill()
        assert process.returncode == 0, stderr.decode()
        assert backend.read_flow_run(run.id).state_type is StateType.COMPLETED
    finally:
        close_backends()
