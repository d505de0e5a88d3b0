"""Run states: what a flow or task run is doing, and what it produced.

A state has a *type* (the nine the engine reasons about) and a *name* (a more
specific label shown to people: ``Retrying`` is a RUNNING state, ``Cached`` and
``Replayed`` are COMPLETED ones). Rules about types live here as pure functions.
"""

from __future__ import annotations

import datetime as _dt
import enum
from typing import Any, Generic

from typing_extensions import TypeVar

from sluice.errors import (
    CancelledRunError,
    CrashedRunError,
    FailedRunError,
    SluiceError,
    UnfinishedRunError,
)


class StateType(str, enum.Enum):
    """The kinds of state the engine distinguishes."""

    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    CANCELLING = "CANCELLING"
    PAUSED = "PAUSED"


# The members under module names, for the code below. On Python 3.11 every
# ``StateType.X`` goes through EnumType.__getattr__ (about 0.1 µs), and the
# engine tests state types several times per task call.
_SCHEDULED = StateType.SCHEDULED
_PENDING = StateType.PENDING
_RUNNING = StateType.RUNNING
_COMPLETED = StateType.COMPLETED
_FAILED = StateType.FAILED
_CRASHED = StateType.CRASHED
_CANCELLED = StateType.CANCELLED
_CANCELLING = StateType.CANCELLING
_PAUSED = StateType.PAUSED

TERMINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)
#: Failed, Crashed and Cancelled runs are the ones a resume may pick up again.
RESUMABLE_TYPES = frozenset({StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})

_DEFAULT_NAMES = {t: t.value.title() for t in StateType}

#: the type of a state's result (``State[int]`` in annotations)
R = TypeVar("R", default=Any)


class _NotLoaded:
    def __repr__(self) -> str:
        return "<not loaded>"

    def __reduce__(self) -> str:
        # Unpickled as the module's one instance: ``data`` compares by identity.
        return "NOT_LOADED"


#: ``State.data`` of a state whose value is only in the store, until first use.
NOT_LOADED: Any = _NotLoaded()


def utcnow() -> _dt.datetime:
    """The current time, timezone-aware in UTC (the only clock the engine uses)."""
    return _dt.datetime.now(_dt.timezone.utc)


class State(Generic[R]):
    """One state of a run; ``State[int]`` annotates one whose result is an int.

    Attributes:
        type: the state's :class:`StateType`.
        name: the label shown to people (``Completed``, ``Retrying``, ``Cached`` ...).
        timestamp: when the run entered this state (UTC).
        message: a human sentence about why, or ``None``.
        data: the run's return value for completed states, held in memory.
        exception: the exception behind a failed or crashed state, if known.
        run_id: the id of the flow or task run this state belongs to, once recorded.
        result_ref: reference to the persisted result; ``data`` is loaded from it
            on first use when the value is not held in memory.
        result_owner: the record ``result_ref`` belongs to (see
            :mod:`sluice.results.owners`): a result signed for another is refused.
    """

    __slots__ = (
        "_data",
        "exception",
        "message",
        "name",
        "result_owner",
        "result_ref",
        "run_id",
        "timestamp",
        "type",
    )

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        exception: BaseException | None = None,
        timestamp: _dt.datetime | None = None,
        result_ref: str | None = None,
        result_owner: str | None = None,
    ) -> None:
        self.type = type
        self.name = name or _DEFAULT_NAMES[type]
        self.message = message
        self._data = data
        self.exception = exception
        self.timestamp = timestamp or utcnow()
        self.run_id: str | None = None
        self.result_ref = result_ref
        self.result_owner = result_owner

    @property
    def data(self) -> Any:
        """The run's return value (loaded from its persisted result if not in memory)."""
        if self._data is NOT_LOADED:
            from sluice.results.store import load_result

            assert self.result_ref is not None
            self._data = load_result(self.result_ref, self.result_owner or "(unknown record)")
        return self._data

    @data.setter
    def data(self, value: Any) -> None:
        self._data = value

    def forget_data(self) -> None:
        """Drop the in-memory value; it is loaded again from the stored result on use."""
        if self.result_ref is not None:
            self._data = NOT_LOADED

    def is_final(self) -> bool:
        """True for states a run never leaves by itself."""
        # Identity tests, not ``in TERMINAL_TYPES``: hashing an enum member
        # runs Python code, and this is asked at every state change.
        kind = self.type
        return kind is _COMPLETED or kind is _FAILED or kind is _CRASHED or kind is _CANCELLED

    def is_completed(self) -> bool:
        return self.type is _COMPLETED

    def is_failed(self) -> bool:
        return self.type is _FAILED

    def is_crashed(self) -> bool:
        return self.type is _CRASHED

    def is_cancelled(self) -> bool:
        return self.type is _CANCELLED

    def is_running(self) -> bool:
        return self.type is _RUNNING

    def is_pending(self) -> bool:
        return self.type is _PENDING

    def is_scheduled(self) -> bool:
        return self.type is _SCHEDULED

    def is_paused(self) -> bool:
        return self.type is _PAUSED

    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's return value.

        Args:
            raise_on_failure: when the state is Failed, Crashed or Cancelled,
                re-raise the original exception (True) or return it (False).

        Raises:
            The exception the run failed with, or a :class:`SluiceError` that
            says why no result exists.
        """
        if self.type is _COMPLETED:
            return self.data
        error = self.exception or self._error_from_message()
        if raise_on_failure and self.type in (
            _FAILED,
            _CRASHED,
            _CANCELLED,
        ):
            raise error
        if self.type in TERMINAL_TYPES:
            return error
        message = f"The run is {self.name}; it has no result yet."
        if self.message:
            message = f"{message} {self.message}"
        raise UnfinishedRunError(message)

    def _error_from_message(self) -> BaseException:
        text = self.message or f"Run ended in state {self.name}"
        if self.type is _CRASHED:
            return CrashedRunError(text)
        if self.type is _CANCELLED:
            return CancelledRunError(text)
        if self.type is _FAILED:
            return FailedRunError(text)
        return SluiceError(text)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (a flow's returned states, stored as its result) as a plain
        # State: a subclass's live handles (a Dask future) stay behind, and a
        # value held only in memory travels with it.
        data = self._data
        if data is NOT_LOADED and self.result_ref is None:
            data = self.data
        fields = (self.type, self.name, self.message, data, self.exception, self.timestamp)
        return (_rebuilt_state, (*fields, self.result_ref, self.result_owner, self.run_id))

    def __repr__(self) -> str:
        message = f", message={self.message!r}" if self.message else ""
        return f"{self.name}(type={self.type.value}{message})"


def _rebuilt_state(*fields: Any) -> State:
    *init, run_id = fields
    state = State(*init)
    state.run_id = run_id
    return state


def Scheduled(name: str = "Scheduled", **kw: Any) -> State:
    """A run waiting for its scheduled start time."""
    return State(_SCHEDULED, name, **kw)


def Late(**kw: Any) -> State:
    """A scheduled run that was not started in time."""
    return State(_SCHEDULED, "Late", **kw)


def AwaitingRetry(**kw: Any) -> State:
    """A failed attempt waiting for its retry delay to pass."""
    return State(_SCHEDULED, "AwaitingRetry", **kw)


def Pending(name: str = "Pending", **kw: Any) -> State:
    """A run created but not yet started."""
    return State(_PENDING, name, **kw)


def Running(name: str = "Running", **kw: Any) -> State:
    """A run whose code is executing."""
    return State(_RUNNING, name, **kw)


def Retrying(**kw: Any) -> State:
    """A run executing again after a failed attempt."""
    return State(_RUNNING, "Retrying", **kw)


def Completed(name: str = "Completed", **kw: Any) -> State:
    """A run that returned normally."""
    return State(_COMPLETED, name, **kw)


def Cached(**kw: Any) -> State:
    """A completed run whose result came from the cache."""
    return State(_COMPLETED, "Cached", **kw)


def Failed(name: str = "Failed", **kw: Any) -> State:
    """A run whose user code raised."""
    return State(_FAILED, name, **kw)


def TimedOut(**kw: Any) -> State:
    """A run stopped because it exceeded its timeout."""
    return State(_FAILED, "TimedOut", **kw)


def Crashed(**kw: Any) -> State:
    """A run ended by a failure of the engine or its process."""
    return State(_CRASHED, "Crashed", **kw)


#: the name of a completed task run whose transaction has not committed yet
STAGED_STATE = "Staged"


def Staged(**kw: Any) -> State:
    """A completed task run inside a transaction that has not committed yet: its
    result is not final (neither replayed by a resume nor a cache hit) until then."""
    return State(_COMPLETED, STAGED_STATE, **kw)


def RolledBack(**kw: Any) -> State:
    """A completed task run whose transaction was rolled back: its effect was undone
    (a Cancelled-type state, so it is neither replayed nor a cache hit)."""
    return State(_CANCELLED, "RolledBack", **kw)


def Cancelling(**kw: Any) -> State:
    """A run asked to stop that has not stopped yet."""
    return State(_CANCELLING, "Cancelling", **kw)


def Cancelled(**kw: Any) -> State:
    """A run stopped on request."""
    return State(_CANCELLED, "Cancelled", **kw)


def Paused(**kw: Any) -> State:
    """A run waiting to be resumed."""
    return State(_PAUSED, "Paused", **kw)


def state_type_from_name(text: str) -> StateType:
    """Parse a state type given by a person (``failed``, ``FAILED``, ``Failed``).

    Raises:
        ValueError: naming the accepted values.
    """
    try:
        return StateType(text.strip().upper())
    except ValueError:
        accepted = ", ".join(t.value.lower() for t in StateType)
        raise ValueError(f"unknown state {text!r}; expected one of: {accepted}") from None
