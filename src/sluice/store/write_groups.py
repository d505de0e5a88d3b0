"""A batch of records as the store writes it: record kinds, and write groups.

The engine's records reach the store as *snapshots* (:mod:`sluice.store.rows`)
tagged with a :class:`RecordKind`, the same kinds whether they are written
by the embedded writer, sent by the HTTP backend, or received by the
server's ingest. :func:`write_groups` turns a batch of them into *write
groups*: per group, in write order, the column values of each row, in the
order of :data:`COLUMNS`. Every write path takes these: the SQLite writer
binds them as they are, the SQLAlchemy statements (PostgreSQL, re-sent
batches), the spool file and the fence check read them by column name.

Groups are written in this order: flows, flow runs, task runs, states, logs,
heartbeats: runs before their history and logs, heartbeats last. A batch's
``fences`` group (the attempts its writer holds, :mod:`sluice.store.fencing`)
comes first and is checked, never written.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from sluice.store.rows import FLOW, FLOW_RUN, LOG, STATE, TASK_RUN, RecordCodec


class RecordKind(enum.IntEnum):
    """What a batcher item holds, in write order. Runs and heartbeats are keyed by id
    (coalesced: the latest snapshot wins); flows, states and logs are appended."""

    FLOW = 0
    FLOW_RUN = 1
    TASK_RUN = 2
    STATE = 3
    LOG = 4
    #: a sign of life of a flow run's process: keyed by the run's id
    HEARTBEAT = 5


#: the kinds whose items are keyed (coalesced), the others are appended
KEYED_KINDS = frozenset({RecordKind.FLOW_RUN, RecordKind.TASK_RUN, RecordKind.HEARTBEAT})
#: each kind's records in words, plural, by kind (for messages)
KIND_NAMES = ("flows", "flow runs", "task runs", "states", "log lines", "heartbeats")
#: each kind's write group, by kind
GROUP_NAMES = ("flows", "flow_runs", "task_runs", "states", "logs", "heartbeats")
#: the group of a batch's fences (checked, never written)
FENCES = "fences"

#: the codec of each record kind (heartbeats have none)
CODECS: Mapping[RecordKind, RecordCodec[Any]] = {
    RecordKind.FLOW: FLOW,
    RecordKind.FLOW_RUN: FLOW_RUN,
    RecordKind.TASK_RUN: TASK_RUN,
    RecordKind.STATE: STATE,
    RecordKind.LOG: LOG,
}

#: group name -> the column each value of its rows is for, in order (the
#: parameters of its write statement; heartbeats name the run to stamp, fences
#: the attempt a writer holds of a run)
COLUMNS: Mapping[str, tuple[str, ...]] = {
    **{GROUP_NAMES[kind]: codec.batched_names for kind, codec in CODECS.items()},
    GROUP_NAMES[RecordKind.HEARTBEAT]: ("b_id",),
    FENCES: ("f_id", "f_attempt"),
}
#: the groups upserted by key: their rows are unique by their first column
KEYED_GROUPS = frozenset(GROUP_NAMES[kind] for kind in KEYED_KINDS)
#: the groups that hold records (not fences), in write order
RECORD_GROUPS = GROUP_NAMES

#: A group of a batch as the store writes it: its name in :data:`COLUMNS` and
#: one tuple of values per row, in that group's column order.
ValueGroup = tuple[str, Sequence[tuple[Any, ...]]]


class SnapshotBatch(Protocol):
    """Snapshots by kind, as a write batch holds them (see ``backend.batcher.WriteBatch``)."""

    @property
    def latest(self) -> Mapping[int, Mapping[Hashable, Any]]:
        """Keyed kinds: key -> latest snapshot (heartbeats: run id -> when)."""
        ...

    @property
    def appended(self) -> Mapping[int, Sequence[Any]]:
        """Appended kinds: every snapshot, in order."""
        ...


def batch_snapshots(batch: SnapshotBatch) -> dict[int, Iterable[Any]]:
    """The snapshots of a writer batch by kind, as :func:`write_groups` takes them:
    the latest snapshot of each run, every appended one, the run of each heartbeat."""
    found: dict[int, Iterable[Any]] = dict(batch.appended)
    for kind, latest in batch.latest.items():
        found[kind] = latest.keys() if kind == RecordKind.HEARTBEAT else latest.values()
    return found


def _heartbeat_values(run_id: Any) -> tuple[Any, ...]:
    # The store stamps a heartbeat with its own clock: only the run is written.
    return (run_id,)


#: (kind, its group, snapshot -> value tuple), in write order
_CONVERSIONS: tuple[tuple[RecordKind, str, Callable[[Any], tuple[Any, ...]]], ...] = tuple(
    (
        kind,
        GROUP_NAMES[kind],
        _heartbeat_values if kind == RecordKind.HEARTBEAT else CODECS[kind].values,
    )
    for kind in RecordKind
)


def write_groups(
    snapshots: Mapping[int, Iterable[Any]], fences: Sequence[tuple[str, int]] = ()
) -> list[ValueGroup]:
    """The write groups of snapshots by kind (heartbeats: run ids), in write order,
    empty groups left out, the ``fences`` (``(flow run id, attempt)`` pairs) first.

    The one conversion from records to what the store writes: the embedded
    writer and the spool (:func:`batch_snapshots` of a writer batch) and the
    server's ingest all use it. Snapshots may come as they are made (a ``map``):
    none is kept once converted.
    """
    groups: list[ValueGroup] = [(FENCES, list(fences))] if fences else []
    for kind, group, values in _CONVERSIONS:
        items = snapshots.get(kind)
        if items is not None:
            rows = list(map(values, items))
            if rows:
                groups.append((group, rows))
    return groups


def group_rows(group: str, values: Sequence[tuple[Any, ...]]) -> list[dict[str, Any]]:
    """A group's rows as dicts of column values (for named parameters and files)."""
    columns = COLUMNS[group]
    return [dict(zip(columns, row, strict=True)) for row in values]


def group_values(group: str, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
    """A group's value tuples from rows given as mappings (a missing column is NULL)."""
    columns = COLUMNS[group]
    return [tuple(row.get(c) for c in columns) for row in rows]


def column_of(group: str, values: Sequence[tuple[Any, ...]], column: str) -> list[Any]:
    """The values of ``column`` in a group's rows (all None when it has no such column)."""
    columns = COLUMNS[group]
    if column not in columns:
        return [None] * len(values)
    at = columns.index(column)
    return [row[at] for row in values]


__all__ = [
    "CODECS",
    "COLUMNS",
    "FENCES",
    "GROUP_NAMES",
    "KEYED_GROUPS",
    "KEYED_KINDS",
    "KIND_NAMES",
    "RECORD_GROUPS",
    "RecordKind",
    "SnapshotBatch",
    "ValueGroup",
    "batch_snapshots",
    "column_of",
    "group_rows",
    "group_values",
    "write_groups",
]
