"""A run's final state from what its function returned ("final state determination").

Pure functions: nothing here waits or writes. A flow's returned futures are
replaced by their final states before these rules see the value
(:func:`sluice.engine.inputs.futures_to_states`).

The rules, the same for flows and tasks and the ones Prefect documents:

1. A state built by the user and returned (``return Completed(name="SKIPPED",
   message=...)``, ``return Failed(message=...)``) is the run's final state as
   given: type, name, message and data. Only final states qualify here; see
   :func:`final_state_of`.
2. A state of another run (``t(return_state=True)``, a returned future), or a
   non-empty list, tuple or set holding only states, is summed up: Completed
   when all completed, else Cancelled when any was cancelled, else Paused when
   any is paused, else Failed; the message counts them ("1/2 states failed.")
   and the data is the returned value itself.
3. Anything else, including a collection that mixes states with other values
   (``return state, 42``), completes the run with the value as its data.

A run that returned nothing after a task failed (a failed future it did not
return) therefore completes: only what the function raises or returns decides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from typing import Any

from sluice.states import TERMINAL_TYPES, Completed, Failed, State, StateType

#: Names the engine gives the Completed states it makes itself: a completed run
#: recorded under another name, or with a message, ended in a state its code returned.
ENGINE_COMPLETED_NAMES = frozenset({"Completed", "Cached", "Replayed"})


class _NoReturn:
    def __repr__(self) -> str:
        return "<no return>"


#: What a run "returned" when its function raised (or was never called).
NO_RETURN: Any = _NoReturn()


def holds_states(value: Any) -> bool:
    """True when ``value`` is a state, or a non-empty list/tuple/set of states only."""
    if isinstance(value, State):
        return True
    if isinstance(value, (list, tuple, set, frozenset)) and value:
        return all(isinstance(item, State) for item in value)
    return False


def final_state_of(value: Any) -> State:
    """The final state of a run whose function returned ``value`` (futures resolved).

    A returned state built by the user (one not attached to any run yet)
    gives a copy of itself, with its name, message and data: the user's
    object is left as it was, so a state kept in a module and returned by
    many runs is the user's every time. A non-final one (``Pending``,
    ``Running`` ...) cannot end a run and gives a Failed state that says so.
    """
    if isinstance(value, State) and value.run_id is None:
        return _adopted(value)
    if holds_states(value):
        states = [value] if isinstance(value, State) else list(value)
        return summed_up(states, value)
    return Completed(data=value)


def _adopted(state: State) -> State:
    if not state.is_final():
        return Failed(
            message=f"The run returned a {state.name} state; only Completed, Failed, "
            "Crashed or Cancelled states can end a run"
        )
    data, exception = state._data, state.exception
    if exception is None and not state.is_completed() and isinstance(data, BaseException):
        exception = data  # ``Failed(data=ValueError(...))``: the exception is the data
    return State(state.type, state.name, state.message, data, exception)


def summed_up(states: Collection[State], data: Any) -> State:
    """One state standing for ``states`` (rule 2), carrying ``data``."""
    total = len(states)
    counts = Counter(s.type for s in states)
    failed = counts[StateType.FAILED] + counts[StateType.CRASHED]
    not_final = sum(1 for s in states if not s.is_final())
    if counts[StateType.COMPLETED] == total:
        return Completed(message="All states completed.", data=data)
    if counts[StateType.CANCELLED]:
        kind, message = (
            StateType.CANCELLED,
            f"{counts[StateType.CANCELLED]}/{total} states cancelled.",
        )
    elif counts[StateType.PAUSED]:
        # Prefect leaves such a run Paused; here nothing would resume it.
        kind, message = StateType.FAILED, f"{counts[StateType.PAUSED]}/{total} states paused."
    elif failed:
        kind, message = StateType.FAILED, f"{failed}/{total} states failed."
    elif not_final:
        kind, message = StateType.FAILED, f"{not_final}/{total} states are not final."
    else:
        shown = ", ".join(f"{t.value}={n}" for t, n in counts.items())
        kind, message = StateType.FAILED, f"Given states: total={total}, {shown}"
    return State(kind, message=message, data=data, exception=first_exception(states))


def first_exception(states: Collection[State]) -> BaseException | None:
    """The exception of the first Failed, Crashed or Cancelled state among ``states``."""
    for state in states:
        if state.type in TERMINAL_TYPES and not state.is_completed():
            return state.exception or state.result(raise_on_failure=False)
    return None


def call_result(returned: Any, state: State) -> Any:
    """What calling a flow gives back when no state was asked for.

    The value the function returned, futures turned into states, unless it is
    a state: then the final state's result (raising if that state is not
    Completed). A function that raised (``returned`` is :data:`NO_RETURN`)
    re-raises through its Failed state.
    """
    if returned is not NO_RETURN and not isinstance(returned, State):
        return returned
    return state.result()


def returned_by_user(state_name: str, message: str | None) -> bool:
    """Whether a recorded Completed task run ended in a state its code returned.

    The record keeps the state's name and message, not how it was made; the
    engine's own Completed states have their own names and no message.
    """
    return state_name not in ENGINE_COMPLETED_NAMES or (
        message is not None and state_name == "Completed"
    )
