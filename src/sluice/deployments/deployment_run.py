"""What ``run_deployment`` returns: a deployment's run, which is also awaitable.

Why one object that is both the result and awaitable
-----------------------------------------------------
``run_deployment`` is called three ways in the code people already have:
plainly from sync code (``run = run_deployment(...)``), awaited in async code
(``run = await run_deployment(...)``), and wrapped by asgiref's
``async_to_sync(run_deployment)(...)`` in Django receivers. The alternatives
each break one of them or the type checker:

* returning a coroutine in async code and the run in sync code (Prefect's
  ``sync_compatible``) is a return type that depends on where the call is
  made, which no annotation can state; and asgiref (3.13 checked) calls the
  function in the *sync* caller's thread, where no loop runs, and awaits its
  result afterwards: such a function returns the plain run there and that
  ``await`` fails;
* two functions (``run_deployment`` and ``arun_deployment``) leave
  ``await run_deployment(...)`` and ``async_to_sync(run_deployment)`` broken.

So the declared type is always :class:`DeploymentRun`, and a
``DeploymentRun`` is ``Awaitable[DeploymentRun]`` (``await`` gives the same
object back). Type checkers follow every form: ``run_deployment(...).id``,
``(await run_deployment(...)).id`` and ``async_to_sync(run_deployment)(...)``
all type as ``DeploymentRun``. What depends on the caller is only *when* the
work happens: called from sync code it is done when the call returns;
called from async code the call only prepares, and ``await`` creates the run
and waits for it without blocking the event loop.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from sluice.errors import NotAwaitedError

if TYPE_CHECKING:
    from sluice.deployments.run import DeploymentCall
    from sluice.schemas import FlowRunRecord
    from sluice.states import State


class DeploymentRun:
    """A run of a deployment as last seen: its record, and its state as a :class:`State`.

    Awaitable: ``await`` gives this same object, once the call that made it is
    done (see the module docstring for why one object is both).

    Attributes:
        record: the flow run record (all fields; ``.id`` is worth saving).

    Raises:
        NotAwaitedError: (reading any attribute) the ``run_deployment`` call
            was made in async code and not awaited yet.
    """

    __slots__ = ("_call", "_record", "_what")

    def __init__(self, record: FlowRunRecord | None = None, *, call: DeploymentCall | None = None):
        if (record is None) == (call is None):
            raise TypeError("DeploymentRun takes a record or a pending call (one of them)")
        self._record = record
        self._call = call
        self._what = f"run_deployment({call.name!r})" if call is not None else ""

    @property
    def record(self) -> FlowRunRecord:
        """The run's flow run record, as last read."""
        if self._record is None:
            raise NotAwaitedError(
                f"{self._what} was called from async code: `await` it to create the run "
                "(and wait for it) before using the result"
            )
        return self._record

    @property
    def id(self) -> str:
        return self.record.id

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def flow_name(self) -> str:
        return self.record.flow_name

    @property
    def parameters(self) -> dict[str, Any]:
        return self.record.parameters

    @property
    def tags(self) -> list[str]:
        return self.record.tags

    @property
    def deployment_id(self) -> str | None:
        return self.record.deployment_id

    @property
    def job_variables(self) -> dict[str, Any]:
        return self.record.job_variables

    @property
    def scheduled_start_time(self) -> _dt.datetime | None:
        return self.record.scheduled_start_time

    @property
    def start_time(self) -> _dt.datetime | None:
        return self.record.start_time

    @property
    def end_time(self) -> _dt.datetime | None:
        return self.record.end_time

    @property
    def state(self) -> State:
        """The run's state; for a completed run with a stored result, ``state.result()``
        loads the flow's return value."""
        return self.record.state

    def __await__(self) -> Generator[Any, None, DeploymentRun]:
        return self._settle().__await__()

    async def _settle(self) -> DeploymentRun:
        call, self._call = self._call, None
        if call is not None:
            self._record = await call.run_async()
        return self

    def __del__(self) -> None:
        if getattr(self, "_call", None) is not None:
            # Like a coroutine never awaited: nothing was created, say so.
            warnings.warn(
                f"{self._what} was called from async code but never awaited: no run was created",
                RuntimeWarning,
                stacklevel=1,
            )

    def __repr__(self) -> str:
        if self._record is None:
            return f"<DeploymentRun of {self._what}, not awaited yet>"
        state = self._record.state_name
        return f"DeploymentRun(id={self.id!r}, name={self.name!r}, state={state!r})"


__all__ = ["DeploymentRun"]
