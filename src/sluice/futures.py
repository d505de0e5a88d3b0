"""Futures returned by ``Task.submit`` and ``Task.map``.

A :class:`SluiceFuture` resolves to the task run's final :class:`State`; the
engine never lets the underlying future raise, so an exception in user code is
re-raised only when someone asks for ``.result()``.
"""

from __future__ import annotations

import concurrent.futures as cf
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, NamedTuple, TypeVar

from sluice.states import Pending, Running, State

R = TypeVar("R")


class SluiceFuture(Generic[R]):
    """The eventual state of a submitted task run."""

    __slots__ = ("_future", "task_key", "task_name", "task_run_id")

    def __init__(
        self, task_run_id: str, task_name: str, future: cf.Future[State], task_key: str = ""
    ) -> None:
        self.task_run_id = task_run_id
        self.task_name = task_name
        #: the call's journal position; it stands for the result in input fingerprints
        self.task_key = task_key
        self._future = future

    def done(self) -> bool:
        return self._future.done()

    def wait(self, timeout: float | None = None) -> None:
        """Block until the task run is final or ``timeout`` seconds pass."""
        cf.wait([self._future], timeout=timeout)

    @property
    def state(self) -> State:
        """The final state if the run is done, else a Pending/Running placeholder."""
        if self._future.done():
            return self._future.result()
        return Running() if self._future.running() else Pending()

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """The task's return value, waiting for it.

        Raises:
            The task's own exception when it failed (``raise_on_failure=True``);
            ``TimeoutError`` when ``timeout`` passes first.
        """
        try:
            state = self._future.result(timeout=timeout)
        except cf.TimeoutError:
            raise TimeoutError(
                f"Task run {self.task_run_id} did not finish within {timeout} s"
            ) from None
        value: R = state.result(raise_on_failure=raise_on_failure)
        return value

    def add_done_callback(self, fn: Callable[[SluiceFuture[R]], None]) -> None:
        """Call ``fn(self)`` once the run is final (at once if it already is)."""
        self._future.add_done_callback(lambda _f: fn(self))

    def __repr__(self) -> str:
        return f"SluiceFuture(task_run_id={self.task_run_id!r}, state={self.state!r})"


class SluiceFutureList(list[SluiceFuture[R]]):
    """The futures of one ``.map()`` call, with helpers over all of them."""

    def wait(self, timeout: float | None = None) -> None:
        """Block until every run is final or ``timeout`` seconds pass."""
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every run's return value, in map order."""
        return [f.result(timeout=timeout, raise_on_failure=raise_on_failure) for f in self]


class DoneAndNotDone(NamedTuple):
    done: set[SluiceFuture[Any]]
    not_done: set[SluiceFuture[Any]]


def wait(futures: Iterable[SluiceFuture[Any]], timeout: float | None = None) -> DoneAndNotDone:
    """Wait until all ``futures`` are final or ``timeout`` seconds pass.

    Returns:
        The futures that finished and those that did not.
    """
    by_inner = {f._future: f for f in futures}
    done, not_done = cf.wait(by_inner, timeout=timeout)
    return DoneAndNotDone({by_inner[f] for f in done}, {by_inner[f] for f in not_done})


def as_completed(
    futures: Iterable[SluiceFuture[Any]], timeout: float | None = None
) -> Iterator[SluiceFuture[Any]]:
    """Yield ``futures`` as they finish, fastest first.

    Raises:
        TimeoutError: when ``timeout`` seconds pass before all are done.
    """
    by_inner = {f._future: f for f in futures}
    try:
        for inner in cf.as_completed(by_inner, timeout=timeout):
            yield by_inner[inner]
    except cf.TimeoutError:
        raise TimeoutError(f"Not every future finished within {timeout} s") from None


def resolved_future(
    task_run_id: str, task_name: str, state: State, task_key: str = ""
) -> SluiceFuture[Any]:
    """A future that is already done with ``state``."""
    inner: cf.Future[State] = cf.Future()
    inner.set_result(state)
    return SluiceFuture(task_run_id, task_name, inner, task_key)
