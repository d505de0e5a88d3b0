"""Durable resume: completed work is replayed, never recomputed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

import sluice
from sluice import flow, task
from sluice.engine.resume import NotResumableError
from sluice.states import StateType
from tests.helpers import flow_runs, log_text, only_flow_run, state_names, task_runs

CALLS: list[str] = []
FAIL_AT: dict[str, int] = {"step": 2}
OFFSET = {"value": 0}


@task
def step(i: int) -> int:
    CALLS.append(f"step-{i}")
    if i == FAIL_AT.get("step"):
        raise RuntimeError(f"step {i} broke")
    return i * 10


@task
def total(values: list[int]) -> int:
    CALLS.append("total")
    return sum(values)


@flow
def pipeline(n: int) -> int:
    values = [step(i + OFFSET["value"]) for i in range(n)]
    return total(values)


@flow
def child(x: int) -> int:
    return step(x)


@flow
def parent(n: int) -> int:
    return sum(child(i) for i in range(n))


@pytest.fixture(autouse=True)
def _reset() -> None:
    CALLS.clear()
    FAIL_AT.clear()
    FAIL_AT["step"] = 2
    OFFSET["value"] = 0


def test_resume_replays_completed_tasks_as_the_same_run() -> None:
    state = pipeline(4, return_state=True)
    assert state.is_failed()
    assert CALLS == ["step-0", "step-1", "step-2"]
    run_id = state.run_id
    assert run_id is not None
    FAIL_AT.clear()
    CALLS.clear()
    resumed = sluice.resume_flow_run(run_id, flow=pipeline)
    assert resumed.result() == 60
    assert CALLS == ["step-2", "step-3", "total"]
    run = only_flow_run("pipeline")
    assert run.id == run_id and run.run_count == 2
    assert state_names(run.id)[-3:] == ["Failed", "Resuming", "Completed"]
    names = {t.name: t.state_name for t in task_runs(run.id)}
    assert names["step-0"] == names["step-1"] == "Replayed"
    assert names["step-3"] == "Completed"


def test_flow_retries_never_rerun_completed_tasks() -> None:
    attempts = {"n": 0}

    @task
    def numbered(i: int) -> int:
        CALLS.append(f"t{i}")
        if i == 4 and attempts["n"] == 1:
            raise RuntimeError("first time only")
        return i

    @flow(retries=1)
    def retried() -> int:
        attempts["n"] += 1
        return sum(numbered(i) for i in range(6))

    assert retried() == 15
    assert CALLS == ["t0", "t1", "t2", "t3", "t4", "t4", "t5"]


def test_resume_from_reexecutes_that_task_and_everything_after(sluice_home: Path) -> None:
    FAIL_AT["step"] = 3
    state = pipeline(4, return_state=True)
    FAIL_AT.clear()
    CALLS.clear()
    assert state.run_id is not None
    sluice.resume_flow_run(state.run_id, from_task="step:1", flow=pipeline)
    assert CALLS == ["step-1", "step-2", "step-3", "total"]


def test_changed_inputs_reexecute_from_the_divergence_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    state = pipeline(4, return_state=True)
    FAIL_AT.clear()
    CALLS.clear()
    OFFSET["value"] = 1  # the code now passes other inputs from step 0 on
    assert state.run_id is not None
    resumed = sluice.resume_flow_run(state.run_id, flow=pipeline)
    assert CALLS == ["step-1", "step-2", "step-3", "step-4", "total"]
    assert resumed.result() == 100
    assert "other inputs than in the journal" in log_text(state.run_id) or any(
        "other inputs" in r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING
    )


def test_subflows_are_replayed_whole_or_resumed_as_the_same_child() -> None:
    state = parent(4, return_state=True)
    assert state.is_failed()
    children_before = {r.id for r in flow_runs("child")}
    assert len(children_before) == 3
    FAIL_AT.clear()
    CALLS.clear()
    assert state.run_id is not None
    assert sluice.resume_flow_run(state.run_id, flow=parent).result() == 60
    # children 0 and 1 replayed whole; child 2 resumed as the same run; child 3 new
    assert CALLS == ["step-2", "step-3"]
    children_after = {r.id for r in flow_runs("child")}
    assert len(children_after) == 4 and children_before < children_after


def test_only_failed_crashed_or_cancelled_runs_can_be_resumed() -> None:
    FAIL_AT.clear()
    state = pipeline(1, return_state=True)
    assert state.type is StateType.COMPLETED
    assert state.run_id is not None
    with pytest.raises(NotResumableError, match="only Failed, Crashed or Cancelled"):
        sluice.resume_flow_run(state.run_id, flow=pipeline)


def test_flows_defined_in_a_function_need_the_flow_passed() -> None:
    @flow
    def local() -> None:
        raise RuntimeError("x")

    state = local(return_state=True)
    assert state.run_id is not None
    with pytest.raises(NotResumableError, match="no recorded entrypoint"):
        sluice.resume_flow_run(state.run_id)
