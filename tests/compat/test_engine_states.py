"""States returned by user code, and a flow's final state from what it returns.

Prefect's documented behaviour ("final state determination", "return a
state"): a returned state built by the code is the run's final state with its
name and message; returned states of runs (or futures) are summed up; any
other value completes the run, whatever failed along the way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sluice import flow, task
from sluice.engine.resume import resume_flow_run
from sluice.errors import FailedRunError, SluiceError
from sluice.futures import SluiceFuture
from sluice.states import Completed, Failed, State, StateType
from sluice.task_runners import ProcessPoolTaskRunner
from tests.helpers import only_flow_run, state_names, task_runs


@task
def fetch_rows(since: str) -> Any:
    rows: list[str] = []  # the source has nothing newer than `since`
    if not rows:
        return Completed(name="SKIPPED", message=f"no rows newer than {since}")
    return rows


@task
def call_api(endpoint: str) -> Any:
    if endpoint == "/broken":
        return Failed(message=f"{endpoint} answered 500; giving up")
    return {"endpoint": endpoint}


@task
def add_one(x: Any) -> int:
    return int(x) + 1


@task
def explode() -> None:
    raise ValueError("exploded")


def by_task(flow_run_id: str) -> dict[str, Any]:
    return {t.name: t for t in task_runs(flow_run_id)}


def test_a_task_returning_a_skipped_state_ends_in_it() -> None:
    @flow
    def sync_rows() -> tuple[Any, Any, Any]:
        direct = fetch_rows("2024-01-01")
        state = fetch_rows("2024-01-02", return_state=True)
        via_future = fetch_rows.submit("2024-01-03").result()
        return direct, state, via_future

    direct, state, via_future = sync_rows()
    # A direct call gives back what the task returned: the state itself.
    assert isinstance(direct, State)
    assert (direct.type, direct.name) == (StateType.COMPLETED, "SKIPPED")
    assert (state.name, state.message) == ("SKIPPED", "no rows newer than 2024-01-02")
    assert state.result() is None  # a state without data has no result
    assert via_future is None
    run = only_flow_run("sync_rows")
    assert run.state_type is StateType.COMPLETED
    for name, day in (("fetch_rows-0", "01"), ("fetch_rows-1", "02"), ("fetch_rows-2", "03")):
        record = by_task(run.id)[name]
        assert (record.state_type, record.state_name) == (StateType.COMPLETED, "SKIPPED")
        assert record.state_message == f"no rows newer than 2024-01-{day}"
        assert state_names(record.id)[-1] == "SKIPPED"


def test_a_task_returning_failed_fails_with_its_message_and_result_raises() -> None:
    failures: list[str] = []

    @task(on_failure=[lambda task, run, state: failures.append(state.message or "")])
    def checked_call(endpoint: str) -> Any:
        return call_api.fn(endpoint)

    @flow
    def report() -> str:
        future = checked_call.submit("/broken")
        future.wait()
        assert future.state.is_failed()
        with pytest.raises(FailedRunError, match="answered 500"):
            future.result()
        assert isinstance(future.result(raise_on_failure=False), SluiceError)
        # A direct call hands the returned Failed state back without raising.
        direct = call_api("/broken")
        assert isinstance(direct, State) and direct.is_failed()
        return "report written"

    # Nothing failing was returned or raised: the flow completes.
    assert report() == "report written"
    run = only_flow_run("report")
    assert run.state_type is StateType.COMPLETED
    record = by_task(run.id)["checked_call-0"]
    assert (record.state_type, record.state_name) == (StateType.FAILED, "Failed")
    assert record.state_message == "/broken answered 500; giving up"
    assert record.run_count == 1  # a returned failure is not retried
    assert failures == ["/broken answered 500; giving up"]


def test_a_flow_returning_a_list_with_one_failed_state_fails() -> None:
    @flow
    def fan_out() -> list[State]:
        good = add_one(1, return_state=True)
        bad = explode(return_state=True)
        return [good, bad]

    state = fan_out(return_state=True)
    assert (state.type, state.message) == (StateType.FAILED, "1/2 states failed.")
    with pytest.raises(ValueError, match="exploded"):
        state.result()
    run = only_flow_run("fan_out")
    assert (run.state_type, run.state_message) == (StateType.FAILED, "1/2 states failed.")
    # Calling the flow gives back the returned value, states and all, without raising.
    returned = fan_out()
    assert [s.type for s in returned] == [StateType.COMPLETED, StateType.FAILED]


def test_a_flow_returning_futures_takes_their_states() -> None:
    @flow
    def all_good() -> list[SluiceFuture[int]]:
        return [add_one.submit(i) for i in range(3)]

    state = all_good(return_state=True)
    assert (state.type, state.message) == (StateType.COMPLETED, "All states completed.")
    assert [s.result() for s in state.result()] == [1, 2, 3]

    @flow
    def one_future() -> SluiceFuture[None]:
        return explode.submit()

    assert one_future(return_state=True).message == "1/1 states failed."
    with pytest.raises(ValueError, match="exploded"):
        one_future()


def test_only_a_returned_state_or_states_decide_not_failures_beside_them() -> None:
    @flow
    def mixed() -> tuple[Any, int]:
        return explode.submit(), 42

    state = mixed(return_state=True)
    assert state.type is StateType.COMPLETED
    failed, answer = mixed()
    assert answer == 42 and isinstance(failed, State) and failed.is_failed()

    @flow
    def fire_and_forget() -> None:
        explode.submit()

    assert fire_and_forget(return_state=True).type is StateType.COMPLETED
    run = only_flow_run("fire_and_forget")
    assert by_task(run.id)["explode-0"].state_type is StateType.FAILED


def test_a_flow_returning_its_own_state_keeps_name_and_message() -> None:
    @flow
    def strict_check(count: int) -> State:
        if count == 0:
            return Failed(message="How did this happen!? No rows at all.")
        return Completed(name="Checked", message=f"{count} rows look fine")

    with pytest.raises(FailedRunError, match="No rows at all"):
        strict_check(0)
    failed = strict_check(0, return_state=True)
    assert failed.type is StateType.FAILED
    assert failed.message == "How did this happen!? No rows at all."
    assert strict_check(3) is None
    fine = strict_check(3, return_state=True)
    assert (fine.type, fine.name, fine.message) == (
        StateType.COMPLETED,
        "Checked",
        "3 rows look fine",
    )
    names = sorted((r.state_name, r.state_message) for r in _runs("strict_check"))
    assert names[0] == ("Checked", "3 rows look fine")
    assert ("Failed", "How did this happen!? No rows at all.") in names


def _runs(name: str) -> list[Any]:
    from tests.helpers import flow_runs

    return flow_runs(name)


@task
def counted_skip(folder: str) -> Any:
    calls = Path(folder, "skip-calls")
    calls.write_text(calls.read_text() + "x" if calls.exists() else "x")
    return Completed(name="SKIPPED", message="nothing to do today", data={"rows": 0})


@task
def maybe_break(folder: str) -> str:
    if Path(folder, "BREAK").exists():
        raise RuntimeError("broken on purpose")
    return "done"


@flow
def nightly(folder: str) -> tuple[str, Any, str]:
    skipped = counted_skip(folder)
    return skipped.name, skipped.result(), maybe_break(folder)


def test_a_resumed_run_replays_a_returned_state_as_that_state(tmp_path: Path) -> None:
    folder = str(tmp_path)
    (tmp_path / "BREAK").touch()
    first = nightly(folder, return_state=True)
    assert first.is_failed()
    (tmp_path / "BREAK").unlink()
    resumed = resume_flow_run(first.run_id or "", flow=nightly)
    assert resumed.is_completed()
    # Replayed from the journal, not run again; the direct call still gives the state.
    assert (tmp_path / "skip-calls").read_text() == "x"
    assert resumed.result() == ("SKIPPED", {"rows": 0}, "done")
    record = by_task(first.run_id or "")["counted_skip-0"]
    assert (record.state_name, record.state_message) == ("SKIPPED", "nothing to do today")
    assert state_names(record.id)[-2:] == ["SKIPPED", "SKIPPED"]


@flow(task_runner=ProcessPoolTaskRunner(max_workers=1))
def skips_in_a_child_process() -> list[Any]:
    future = fetch_rows.submit("yesterday")
    future.wait()
    return [future.state.name, future.state.message, future.result()]


@pytest.mark.integration
def test_a_returned_state_comes_back_from_a_worker_process() -> None:
    assert skips_in_a_child_process() == ["SKIPPED", "no rows newer than yesterday", None]
    run = only_flow_run("skips_in_a_child_process")
    (record,) = task_runs(run.id)
    assert (record.state_name, record.state_message) == ("SKIPPED", "no rows newer than yesterday")


def test_submit_and_map_with_return_state_give_final_states() -> None:
    """Prefect: ``submit(return_state=True)`` waits and returns the run's state;
    ``map(return_state=True)`` returns the states of every call."""

    @task
    def half(x: int) -> float:
        if x == 0:
            raise ValueError("zero")
        return 1 / x

    @flow
    def states_of_calls() -> tuple[State, list[State]]:
        one = half.submit(2, return_state=True)
        many = half.map([1, 0], return_state=True)
        return one, many

    one, many = states_of_calls()
    assert isinstance(one, State) and one.is_completed() and one.result() == 0.5
    assert [s.type for s in many] == [StateType.COMPLETED, StateType.FAILED]
