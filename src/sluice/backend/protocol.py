"""The Backend protocol: everything the engine and CLI need from a store.

The engine talks only to this protocol, so embedded mode (SQLite/PostgreSQL in
process) and client mode (a Sluice server over HTTP) run the same engine code.

Write methods may buffer: a record is durable only after :meth:`Backend.flush`
returns. Implementations copy what they need from a record before returning,
so the engine may keep mutating the record it passed in.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)


@runtime_checkable
class Backend(Protocol):
    """Record and read flows, runs, states and logs."""

    # -- writes (may be buffered until flush) ---------------------------------
    def write_flow(self, flow: FlowRecord) -> None:
        """Register a flow by name (a flow already known by that name is kept)."""
        ...

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a flow run row and append ``state`` to its history."""
        ...

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a task run row and append ``state`` to its history."""
        ...

    def write_logs(self, logs: Sequence[LogRecord]) -> None:
        """Append log lines."""
        ...

    def heartbeat(self, flow_run_id: str, at: _dt.datetime) -> None:
        """Record that the process running ``flow_run_id`` is alive."""
        ...

    def flush(self) -> None:
        """Make every write made so far durable; raises if that is impossible."""
        ...

    def close(self) -> None:
        """Flush and release resources; the backend is unusable afterwards."""
        ...

    # -- reads (see every write flushed so far) -------------------------------
    def read_flow(self, name: str) -> FlowRecord:
        """A flow by name (``my_flow`` and ``my-flow`` both match). Raises NotFoundError."""
        ...

    def list_flows(self, limit: int = 200) -> list[FlowRecord]:
        """Flows, most recently created first."""
        ...

    def read_flow_run(self, run_id: str) -> FlowRunRecord:
        """A flow run by id or unique id prefix. Raises NotFoundError."""
        ...

    def list_flow_runs(self, flt: FlowRunFilter) -> list[FlowRunRecord]:
        """Flow runs matching ``flt``, newest first."""
        ...

    def count_flow_runs(self, flt: FlowRunFilter) -> int:
        """How many flow runs match ``flt`` (ignoring limit/offset)."""
        ...

    def read_task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Task runs of a flow run, in creation order."""
        ...

    def read_task_run(self, task_run_id: str) -> TaskRunRecord:
        """A task run by id or unique id prefix. Raises NotFoundError."""
        ...

    def read_states(self, run_id: str) -> list[StateRecord]:
        """The state history of a flow or task run, oldest first."""
        ...

    def find_cached_task_run(self, cache_key: str, now: _dt.datetime) -> TaskRunRecord | None:
        """The newest Completed task run with ``cache_key``, a stored result, and a cache
        expiration that is unset or later than ``now``; None when there is none."""
        ...

    def read_journal(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Every Completed task run of a flow run that has a stored result (its journal)."""
        ...

    def mark_lapsed_runs_crashed(self, timeout: float) -> list[str]:
        """Mark Running flow runs whose last heartbeat (or start, if none) is ``timeout``
        seconds old on the database's clock as Crashed, with a state record saying why;
        their unfinished task runs become Crashed too. Returns the flow run ids marked."""
        ...

    def mark_gone_runs_crashed(self, runs: Sequence[FlowRunRecord]) -> list[str]:
        """Mark these Running flow runs Crashed, each only if it still runs in the process
        it recorded (``host_id``, ``pid``, ``pid_started``), which the caller saw gone
        from its host; the ids marked."""
        ...

    # -- attempts: the fence between executions of one run (see sluice.liveness) ----
    def claim_attempt(self, flow_run_id: str) -> int:
        """Take the next attempt of a flow run for this process, at once (not buffered);
        its number. From then on the store refuses writes fenced with earlier ones."""
        ...

    def hold_attempt(self, flow_run_id: str, attempt: int) -> None:
        """Fence every write sent from now on with ``attempt`` of ``flow_run_id``."""
        ...

    def release_attempt(self, flow_run_id: str) -> None:
        """Stop fencing writes for ``flow_run_id``."""
        ...

    def attempt_lost(self, flow_run_id: str) -> bool:
        """Whether the store refused writes fenced with this process's attempt (cheap)."""
        ...

    def attempt_confirmed_at(self, flow_run_id: str) -> float:
        """When (``time.monotonic()``) a write last proved the attempt still held (cheap)."""
        ...

    def confirm_attempt(self, flow_run_id: str, attempt: int) -> bool:
        """Ask the store now (after delivering pending writes) whether ``attempt`` still
        holds ``flow_run_id``."""
        ...

    def read_logs(
        self,
        flow_run_id: str,
        *,
        task_run_id: str | None = None,
        min_level: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Logs of a flow run (and its task runs), oldest first."""
        ...


@runtime_checkable
class RecordSink(Protocol):
    """The write half of a backend: all a task needs to report what it does.

    A task running away from the store (in another process) reports into a
    sink that collects records and hands them back to the flow's backend.
    """

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None: ...

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None: ...

    def write_logs(self, logs: Sequence[LogRecord]) -> None: ...
