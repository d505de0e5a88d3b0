"""State rules."""

from __future__ import annotations

import pytest

from sluice import states
from sluice.errors import CrashedRunError, SluiceError
from sluice.states import StateType


def test_named_variants_keep_their_type() -> None:
    assert states.Retrying().type is StateType.RUNNING
    assert states.AwaitingRetry().type is StateType.SCHEDULED
    assert states.Late().type is StateType.SCHEDULED
    assert states.Cached().type is StateType.COMPLETED
    assert states.TimedOut().type is StateType.FAILED
    assert states.Cached().name == "Cached"


def test_final_states() -> None:
    final = {t for t in StateType if states.State(t).is_final()}
    assert final == {
        StateType.COMPLETED,
        StateType.FAILED,
        StateType.CRASHED,
        StateType.CANCELLED,
    }


def test_result_reraises_the_original_exception() -> None:
    error = KeyError("k")
    state = states.Failed(exception=error)
    with pytest.raises(KeyError):
        state.result()
    assert state.result(raise_on_failure=False) is error


def test_crashed_without_exception_raises_crashed_run_error() -> None:
    with pytest.raises(CrashedRunError, match="lost"):
        states.Crashed(message="worker lost").result()


def test_result_of_a_running_state_says_there_is_none_yet() -> None:
    with pytest.raises(SluiceError, match="no result yet"):
        states.Running().result()


def test_state_names_parse_case_insensitively() -> None:
    assert states.state_type_from_name("failed") is StateType.FAILED
    with pytest.raises(ValueError, match="expected one of"):
        states.state_type_from_name("exploded")


def test_errors_with_context_survive_pickling() -> None:
    import pickle

    from sluice import errors

    samples = [
        errors.NotFoundError("flow run", "abc"),
        errors.AmbiguousIdError("flow run", "ab", ["abc", "abd"]),
        errors.StoreCorruptError("/tmp/x.db", "not a database"),
        errors.ParameterValidationError("f", [("a", "bad")]),
        errors.SerializationError("result of task 't'", "lock", "cannot pickle"),
    ]
    for error in samples:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error) and str(copy) == str(error)
