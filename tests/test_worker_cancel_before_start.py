"""A run cancelled after a worker claimed it, before its process started it, is not run.

Cancelling a Pending run ends it at once (nothing runs it yet); the
process the worker hands it to must not then start it, which would
overwrite Cancelled with Running and run the flow to the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sluice.backend.factory import close_backends, get_backend
from sluice.deployments import run_deployment
from sluice.deployments.specs import DeploymentSpec
from sluice.states import StateType
from sluice.workers.payload import CONTROL_ENV, RunPayload, encode_payload

pytestmark = pytest.mark.integration

FLOWS = """
from pathlib import Path

from sluice import flow


@flow
def touch(folder: str) -> str:
    Path(folder, "ran").touch()
    return "ran"
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
