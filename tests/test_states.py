"""State rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice import states
from sluice.errors import CrashedRunError, SluiceError
from sluice.results.owners import flow_result_owner
from sluice.results.store import result_store_for
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


def test_states_pickle_as_plain_states_that_keep_what_they_say(sluice_home: Path) -> None:
    import pickle

    class Holding(states.State):
        """A state whose value lives elsewhere until asked for (as on Dask)."""

        __slots__ = ("_live",)

        def __init__(self) -> None:
            super().__init__(StateType.COMPLETED, "Cached", "from the cache", states.NOT_LOADED)
            self._live = lambda: 42  # not picklable: must stay behind

        @property
        def data(self) -> object:
            return self._live() if self._data is states.NOT_LOADED else self._data

    skipped = states.Completed(name="SKIPPED", message="nothing new", data={"rows": 0})
    skipped.run_id = "run-1"
    owner = flow_result_owner("run-2")
    ref = result_store_for(sluice_home).persist(5, owner, storage_key="run-2")
    stored = states.Completed(data=states.NOT_LOADED, result_ref=ref, result_owner=owner)
    failed = states.Failed(message="no", exception=KeyError("k"))
    copies = pickle.loads(pickle.dumps([skipped, stored, failed, Holding()]))
    assert [type(c) for c in copies] == [states.State] * 4
    assert (copies[0].name, copies[0].message, copies[0].data, copies[0].run_id) == (
        "SKIPPED", "nothing new", {"rows": 0}, "run-1",
    )  # fmt: skip
    assert copies[0].timestamp == skipped.timestamp
    assert copies[1]._data is states.NOT_LOADED and copies[1].result() == 5
    with pytest.raises(KeyError):
        copies[2].result()
    assert (copies[3].name, copies[3].result()) == ("Cached", 42)
