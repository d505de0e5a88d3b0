"""What a worker records when a flow run's process has ended (workers/outcomes.py)."""

from __future__ import annotations

import subprocess
import sys

from sluice.backend.factory import close_backends, get_backend
from sluice.schemas import FlowRunRecord, new_id
from sluice.states import Failed, Pending, StateType
from sluice.workers.outcomes import settle
from sluice.workers.process import FlowRunProcess
from tests.deployment_backends import make_deployment


def ended_process(run_id: str, code: int) -> FlowRunProcess:
    popen = subprocess.Popen([sys.executable, "-c", f"raise SystemExit({code})"])
    popen.wait(timeout=60)
    return FlowRunProcess(run_id, popen)


def test_a_run_resumed_before_its_process_was_settled_is_left_queued() -> None:
    backend = get_backend()
    try:
        backend.upsert_deployment(make_deployment())  # type: ignore[attr-defined]
        run = backend.create_flow_run_from_deployment("etl/daily")  # type: ignore[attr-defined]
        run.apply(Failed(message="boom"))
        backend.write_flow_run(run)
        backend.flush()
        backend.resume_flow_run(run.id)  # type: ignore[attr-defined]
        assert settle(backend, ended_process(run.id, 1), 1, "w") == "requeued"
        after = backend.read_flow_run(run.id)
        assert (after.state_type, after.state_name) == (StateType.SCHEDULED, "AwaitingResume")
    finally:
        close_backends()


def test_a_process_that_died_before_a_final_state_leaves_its_run_crashed() -> None:
    backend = get_backend()
    try:
        run = FlowRunRecord(id=new_id(), flow_name="etl", name="r")
        run.apply(Pending())
        backend.write_flow_run(run)
        backend.flush()
        assert settle(backend, ended_process(run.id, 3), 3, "w") == "crashed"
        after = backend.read_flow_run(run.id)
        assert after.state_type is StateType.CRASHED
        assert "without a final state" in (after.state_message or "")
    finally:
        close_backends()
