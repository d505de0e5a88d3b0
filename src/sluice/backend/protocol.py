"""The Backend: the one typed store interface the engine, CLI, workers and server use.

The engine talks only to this interface, so embedded mode (SQLite/PostgreSQL in
process, :class:`~sluice.backend.local.LocalBackend`) and client mode (a Sluice
server over HTTP, :class:`~sluice.backend.http.HttpBackend`) run the same code;
:func:`sluice.backend.factory.get_backend` returns one.

Two halves:

- Run records are *written behind*: write methods may buffer, a record is
  durable only after :meth:`Backend.flush` returns. Implementations copy what
  they need from a record before returning, so the engine may keep mutating
  the record it passed in.
- Everything else is an *operation* (:mod:`sluice.operations`): a request
  given to :meth:`Backend.execute`, which flushes pending writes first (so a
  process reads its own writes) and answers once the store committed it.
  The operations used everywhere also have a named method (:class:`NamedOperations`).
"""

from __future__ import annotations

import abc
import datetime as _dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeVar, runtime_checkable

from sluice.backend.calls import NamedOperations, run_ops
from sluice.liveness import is_superseded
from sluice.operations.base import Operation
from sluice.schemas import (
    FlowRecord,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)

if TYPE_CHECKING:
    from sluice.backend.attempts import HeldAttempts
    from sluice.settings import Settings

R = TypeVar("R")


class Backend(NamedOperations, abc.ABC):
    """Record runs, and run operations, on a store."""

    #: the settings the backend was opened with
    settings: Settings
    #: the attempts this process holds: every write is fenced with them (see sluice.liveness)
    attempts: HeldAttempts

    # -- writes (may be buffered until flush) ---------------------------------------------
    @abc.abstractmethod
    def write_flow(self, flow: FlowRecord) -> None:
        """Register a flow by name (a flow already known by that name is kept)."""

    @abc.abstractmethod
    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a flow run row and append ``state`` to its history."""

    @abc.abstractmethod
    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a task run row and append ``state`` to its history."""

    @abc.abstractmethod
    def write_logs(self, logs: Sequence[LogRecord]) -> None:
        """Append log lines."""

    @abc.abstractmethod
    def heartbeat(self, flow_run_id: str, at: _dt.datetime) -> None:
        """Record that the process running ``flow_run_id`` is alive."""

    @abc.abstractmethod
    def flush(self) -> None:
        """Make every write made so far durable; raises if that is impossible."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and release resources; the backend is unusable afterwards."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""

    @property
    def kept_aside(self) -> int:
        """How many records this process keeps aside, not in the store yet (the
        embedded store's spool file while its database is away); 0 by default."""
        return 0

    def replay_spools(self) -> None:
        """Write to the store the records other processes kept aside for it and left
        (the embedded store's spool files); nothing to do by default."""

    # -- operations -----------------------------------------------------------------------
    @abc.abstractmethod
    def execute(self, op: Operation[R]) -> R:
        """Run ``op`` on the store, after flushing pending writes; its answer.

        Raises:
            whatever the operation's documentation names (NotFoundError ...), the
            same errors on every backend; StoreError when the store is unavailable.
        """

    @abc.abstractmethod
    def prepare_reads(self) -> None:
        """Load now what the first operation would load (a process about to read once
        pays for the imports before it starts timing-sensitive work)."""

    # -- attempts: the fence between executions of one run (see sluice.liveness) ----------
    def hold_attempt(self, flow_run_id: str, attempt: int) -> None:
        """Fence every write sent from now on with ``attempt`` of ``flow_run_id``."""
        self.attempts.hold(flow_run_id, attempt)

    def release_attempt(self, flow_run_id: str) -> None:
        """Stop fencing writes for ``flow_run_id``."""
        self.attempts.release(flow_run_id)

    def attempt_lost(self, flow_run_id: str) -> bool:
        """Whether the store refused writes fenced with this process's attempt (cheap)."""
        return self.attempts.lost(flow_run_id)

    def attempt_confirmed_at(self, flow_run_id: str) -> float:
        """When (``time.monotonic()``) a write last proved the attempt still held (cheap)."""
        return self.attempts.confirmed_at(flow_run_id)

    def confirm_attempt(self, flow_run_id: str, attempt: int) -> bool:
        """Ask the store now (after delivering pending writes) whether ``attempt`` still
        holds ``flow_run_id``."""
        stored = self.execute(run_ops.ReadAttempt(flow_run_id))
        held = not is_superseded(attempt, stored)
        self.attempts.settle([(flow_run_id, attempt)], set() if held else {flow_run_id}, 0.0)
        return held


@runtime_checkable
class RecordSink(Protocol):
    """The write half of a backend: all a task needs to report what it does.

    A task running away from the store (in another process) reports into a
    sink that collects records and hands them back to the flow's backend.
    """

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None: ...

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None: ...

    def write_logs(self, logs: Sequence[LogRecord]) -> None: ...
