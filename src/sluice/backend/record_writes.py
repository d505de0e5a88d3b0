"""The engine's record writes, the same for the embedded store and client mode.

A write takes a snapshot of the record on the caller's thread (see
:mod:`sluice.store.rows`: a fraction of a microsecond, the engine keeps
mutating its records) and puts it, tagged with its
:class:`~sluice.store.write_groups.RecordKind`, on the backend's
:class:`~sluice.backend.batcher.WriteBehindBatcher`. The writer thread then
turns each batch into write groups (the embedded store,
:func:`~sluice.store.write_groups.write_groups`) or into ingest request bodies
(client mode, :mod:`sluice.backend.wire`).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.store.rows import FLOW, FLOW_RUN, LOG, STATE, TASK_RUN
from sluice.store.write_groups import RecordKind

# Module globals: an enum member's attribute lookup costs more than a global's.
_FLOW = RecordKind.FLOW
_FLOW_RUN = RecordKind.FLOW_RUN
_TASK_RUN = RecordKind.TASK_RUN
_STATE = RecordKind.STATE
_LOG = RecordKind.LOG
_HEARTBEAT = RecordKind.HEARTBEAT

Item = tuple[int, Any, Any]


class RecordWrites:
    """The record writes of the Backend protocol, over a batcher's ``put``.

    A subclass sets, before the first write:

    Attributes:
        _put: enqueues one ``(kind, key, snapshot)`` item.
        _put_many: enqueues several.
        _settle: called after a state change: where a lagging writer gets its turn
            (the embedded writer's :meth:`~sluice.backend.batcher.WriteBehindBatcher.settle`).
    """

    _put: Callable[[Item], None]
    _put_many: Callable[[Iterable[Item]], None]
    _settle: Callable[[], None]

    def write_flow(self, flow: FlowRecord) -> None:
        """Register a flow by name (a flow already known by that name is kept)."""
        self._put((_FLOW, None, _flow_snapshot(flow)))

    def write_flow_run(self, run: FlowRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a flow run row and append ``state`` to its history."""
        self._put((_FLOW_RUN, run.id, _flow_run_snapshot(run)))
        if state is not None:
            self._put((_STATE, None, _state_snapshot(state)))
            self._settle()

    def write_task_run(self, run: TaskRunRecord, state: StateRecord | None = None) -> None:
        """Create or update a task run row and append ``state`` to its history."""
        self._put((_TASK_RUN, run.id, _task_run_snapshot(run)))
        if state is not None:
            self._put((_STATE, None, _state_snapshot(state)))
            # A state change is where a lagging writer gets its turn (see settle).
            self._settle()

    def write_logs(self, logs: Sequence[LogRecord]) -> None:
        """Append log lines."""
        self._put_many([(_LOG, None, _log_snapshot(record)) for record in logs])

    def heartbeat(self, flow_run_id: str, at: _dt.datetime) -> None:
        """Record that the process running ``flow_run_id`` is alive (never moves back)."""
        self._put((_HEARTBEAT, flow_run_id, at))


_flow_snapshot = FLOW.snapshot
_flow_run_snapshot = FLOW_RUN.snapshot
_task_run_snapshot = TASK_RUN.snapshot
_state_snapshot = STATE.snapshot
_log_snapshot = LOG.snapshot


def no_settle() -> None:
    """A ``_settle`` for writers that need none (client mode batches over an interval)."""


__all__ = ["RecordWrites", "no_settle"]
