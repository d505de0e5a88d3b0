"""Final state determination: the pure rules of sluice.engine.final_state."""

from __future__ import annotations

import pytest

from sluice.engine.final_state import (
    NO_RETURN,
    call_result,
    final_state_of,
    holds_states,
    returned_by_user,
)
from sluice.errors import FailedRunError
from sluice.states import (
    Cancelled,
    Completed,
    Crashed,
    Failed,
    Paused,
    Pending,
    Running,
    State,
    StateType,
)


def of_a_run(state: State, run_id: str = "run-1") -> State:
    """A state as the engine records it: attached to a run."""
    state.run_id = run_id
    return state


def test_plain_values_complete_the_run_with_the_value() -> None:
    for value in (None, 3, "x", [1, 2], {"a": 1}, [], ()):
        state = final_state_of(value)
        assert state.type is StateType.COMPLETED and state.name == "Completed"
        assert state.message is None
        assert state.data == value


def test_a_state_built_by_the_user_is_the_final_state_as_given() -> None:
    skipped = Completed(name="SKIPPED", message="nothing new", data={"rows": 0})
    final = final_state_of(skipped)
    assert (final.type, final.name, final.message, final.data) == (
        StateType.COMPLETED, "SKIPPED", "nothing new", {"rows": 0},
    )  # fmt: skip
    failed = final_state_of(Failed(message="the API said no"))
    assert (failed.type, failed.message) == (StateType.FAILED, "the API said no")
    with pytest.raises(FailedRunError, match="the API said no"):
        failed.result()


def test_a_returned_state_is_copied_so_one_kept_in_a_module_serves_every_run() -> None:
    skip = Completed(name="SKIPPED", message="nothing to do")
    first = final_state_of(skip)
    first.run_id = "run-1"  # the engine attaches the final state to the run
    second = final_state_of(skip)
    assert skip.run_id is None
    assert second is not first and (second.name, second.message) == ("SKIPPED", "nothing to do")


def test_a_failed_state_whose_data_is_an_exception_raises_it() -> None:
    error = ValueError("bad row")
    state = final_state_of(Failed(message="bad", data=error))
    assert state.exception is error
    with pytest.raises(ValueError, match="bad row"):
        state.result()


def test_a_returned_non_final_state_cannot_end_a_run() -> None:
    for state in (Pending(), Running()):
        final = final_state_of(state)
        assert final.type is StateType.FAILED
        assert state.name in (final.message or "")


def test_states_of_runs_are_summed_up() -> None:
    ok = of_a_run(Completed(data=1))
    bad = of_a_run(Failed(message="boom", exception=KeyError("k")), "run-2")
    state = final_state_of([ok, bad])
    assert (state.type, state.message) == (StateType.FAILED, "1/2 states failed.")
    assert state.data == [ok, bad]
    with pytest.raises(KeyError):
        state.result()
    all_ok = final_state_of((ok, ok))
    assert (all_ok.type, all_ok.message) == (StateType.COMPLETED, "All states completed.")
    assert all_ok.result() == (ok, ok)


def test_a_single_state_of_a_run_is_summed_up_too() -> None:
    ok = of_a_run(Completed(data=5))
    state = final_state_of(ok)
    assert state is not ok and state.is_completed() and state.data is ok
    crashed = final_state_of(of_a_run(Crashed(message="gone")))
    assert (crashed.type, crashed.message) == (StateType.FAILED, "1/1 states failed.")


def test_cancelled_and_unfinished_states_in_a_sum() -> None:
    ok = of_a_run(Completed())
    cancelled = final_state_of({ok, of_a_run(Cancelled(), "run-2")})
    assert (cancelled.type, cancelled.message) == (StateType.CANCELLED, "1/2 states cancelled.")
    waiting = final_state_of([ok, of_a_run(Pending(name="NotReady"), "run-3")])
    assert (waiting.type, waiting.message) == (StateType.FAILED, "1/2 states are not final.")
    paused = final_state_of([of_a_run(Paused())])
    assert (paused.type, paused.message) == (StateType.FAILED, "1/1 states paused.")


def test_a_collection_that_mixes_states_and_values_completes() -> None:
    bad = of_a_run(Failed(message="boom"))
    for value in ((bad, 42), [bad, "x"], {"state": bad}):
        state = final_state_of(value)
        assert state.is_completed() and state.data == value


def test_holds_states() -> None:
    assert holds_states(Completed())
    assert holds_states([Completed(), Failed()])
    assert not holds_states([])
    assert not holds_states([Completed(), 1])
    assert not holds_states({"a": Completed()})


def test_calling_a_flow_gives_its_returned_value_unless_it_is_a_state() -> None:
    bad = of_a_run(Failed(message="boom"))
    states = [of_a_run(Completed()), bad]
    # A list of states is given back as it is, even though the run failed.
    assert call_result(states, final_state_of(states)) is states
    with pytest.raises(FailedRunError, match="boom"):
        call_result(bad, final_state_of(bad))
    skipped = Completed(name="SKIPPED", data=7)
    assert call_result(skipped, final_state_of(skipped)) == 7
    with pytest.raises(RuntimeError, match="raised"):
        call_result(NO_RETURN, Failed(exception=RuntimeError("raised")))


def test_recorded_runs_that_ended_in_a_returned_state() -> None:
    assert returned_by_user("SKIPPED", None)
    assert returned_by_user("Completed", "a message of the user's")
    assert not returned_by_user("Completed", None)
    assert not returned_by_user("Cached", "Result of task run x")
    assert not returned_by_user("Replayed", None)
