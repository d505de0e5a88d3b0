"""What a worker records when a flow run's process has ended (workers/outcomes.py)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from sluice.backend.factory import close_backends, get_backend
from sluice.schemas import FlowRunRecord, new_id
from sluice.states import Completed, Failed, Pending, Running, StateType
from sluice.workers.execute import EXIT_NOT_STARTED, EXIT_RECORDS_PENDING, EXIT_SUPERSEDED
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
        assert settle(backend, ended_process(run.id, 7), 7, "w") == "crashed"
        after = backend.read_flow_run(run.id)
        assert after.state_type is StateType.CRASHED
        assert "without a final state" in (after.state_message or "")
    finally:
        close_backends()


def _claimed_run(backend: object) -> FlowRunRecord:
    b: Any = backend
    b.upsert_deployment(make_deployment())
    b.create_flow_run_from_deployment("etl/daily")
    (run,) = b.claim_flow_runs("default", worker_name="w", limit=1)
    assert run.state_type is StateType.PENDING
    return run  # type: ignore[no-any-return]


def test_a_run_that_could_not_start_for_want_of_the_store_goes_back_to_the_queue() -> None:
    backend = get_backend()
    try:
        run = _claimed_run(backend)
        code = EXIT_NOT_STARTED
        assert settle(backend, ended_process(run.id, code), code, "w") == "released"
        after = backend.read_flow_run(run.id)
        assert after.state_type is StateType.SCHEDULED
        assert [s.type for s in backend.read_states(run.id)][-1] is StateType.SCHEDULED
    finally:
        close_backends()


def test_a_superseded_process_leaves_the_run_to_the_attempt_that_holds_it() -> None:
    backend = get_backend()
    try:
        run = FlowRunRecord(id=new_id(), flow_name="etl", name="r", attempt=2)
        run.apply(Running())
        backend.write_flow_run(run)
        backend.flush()
        code = EXIT_SUPERSEDED
        assert settle(backend, ended_process(run.id, code), code, "w") == "superseded"
        assert backend.read_flow_run(run.id).state_type is StateType.RUNNING
        assert backend.read_states(run.id) == []
    finally:
        close_backends()


def test_a_run_whose_last_records_are_still_on_their_way_is_not_called_crashed() -> None:
    backend = get_backend()
    try:
        run = FlowRunRecord(id=new_id(), flow_name="etl", name="r", attempt=1)
        run.apply(Running())
        backend.write_flow_run(run)
        backend.flush()
        code = EXIT_RECORDS_PENDING
        assert settle(backend, ended_process(run.id, code), code, "w") == "records pending"
        assert backend.read_flow_run(run.id).state_type is StateType.RUNNING
        # When they arrive, they carry the run's final state.
        run.apply(Completed())
        backend.write_flow_run(run)
        assert backend.read_flow_run(run.id).state_type is StateType.COMPLETED
    finally:
        close_backends()
