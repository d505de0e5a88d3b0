"""The fence in the store's write path: writes of a superseded attempt are refused.

A process executing a flow run holds an attempt number (see
:mod:`sluice.liveness`); every batch it writes carries a *fence* per run it
holds (``(run id, n)``, the group ``fences`` of a batch's write groups,
:mod:`sluice.store.write_groups`). Inside the batch's transaction the store
reads the stored attempt of each fenced run: when a later attempt took a
run over, every record of that run in the batch is dropped (the run's row,
its subflow runs, their task runs, states, logs and heartbeats) and the
batch's writer is told which runs it lost. Records of runs it still holds are written as usual.

Both write paths use this module (:func:`fenced`): the embedded SQLite
writer on the standard library's ``sqlite3`` (:mod:`sluice.store.sqlite_native`)
and the SQLAlchemy statements (:mod:`sluice.store.writes`, PostgreSQL, the
server's ingest, re-sent and replayed batches), each through a
:class:`FenceLookups` of its own. Records are found by column name in the
write groups. Nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sluice.liveness import is_superseded
from sluice.store.write_groups import COLUMNS, FENCES, ValueGroup, column_of


class FenceLookups(Protocol):
    """What the refusal needs from the database, inside the batch's transaction."""

    def attempts(self, run_ids: list[str]) -> dict[str, int | None]:
        """The stored attempt of each of these flow runs that exists."""
        ...

    def children(self, run_ids: list[str]) -> set[str]:
        """The flow runs whose parent is one of ``run_ids`` (subflows)."""
        ...

    def task_owners(self, task_ids: list[str]) -> dict[str, str | None]:
        """The flow run of each of these task runs that exists."""
        ...


def fenced(
    groups: Sequence[ValueGroup], lookups: FenceLookups
) -> tuple[list[ValueGroup], set[str]]:
    """The groups to write of a batch (its fences checked and left out), and the fenced
    runs a later attempt took over, whose records are left out too."""
    fences = [f for name, values in groups if name == FENCES for f in values]
    todo = [g for g in groups if g[0] != FENCES]
    if not fences:
        return todo, set()
    superseded = superseded_runs(fences, lookups)
    if superseded:
        todo = without_refused(todo, superseded, lookups)
    return todo, superseded


def superseded_runs(fences: Iterable[tuple[Any, ...]], lookups: FenceLookups) -> set[str]:
    """The runs of ``(run id, attempt)`` fences a later attempt took over (one indexed read)."""
    held = {str(run_id): int(attempt) for run_id, attempt in fences}
    if not held:
        return set()
    stored = lookups.attempts(sorted(held))
    return {run_id for run_id, n in held.items() if is_superseded(n, stored.get(run_id))}


#: For each group, how to find the run a record belongs to: ``(kind, field)``
#: pairs tried in order; kind "flow" names a flow run, "task" a task run.
OWNERS: dict[str, tuple[tuple[str, str], ...]] = {
    "flows": (),
    "flow_runs": (("flow", "id"), ("flow", "parent_flow_run_id")),
    "task_runs": (("flow", "flow_run_id"), ("task", "id")),
    "states": (("state", "run_id"),),
    "logs": (("flow", "flow_run_id"), ("task", "task_run_id")),
    "heartbeats": (("flow", "b_id"),),
}


@dataclass
class Refusal:
    """The records of a batch that belong to superseded runs.

    Attributes:
        runs: the superseded flow runs and their subflow runs.
        tasks: the task runs of those.
    """

    runs: set[str] = field(default_factory=set)
    tasks: set[str] = field(default_factory=set)

    def refuses(self, group: str, get: Callable[[str], Any]) -> bool:
        """Whether the record of ``group`` read through ``get(field)`` is refused."""
        for kind, name in OWNERS.get(group, ()):
            value = get(name)
            if kind == "state":
                taken = self.runs if get("kind") == "flow" else self.tasks
                if value in taken:
                    return True
            elif value is not None and value in (self.runs if kind == "flow" else self.tasks):
                return True
        return False


def refusal_for(
    superseded: set[str],
    batch_runs: Iterable[tuple[str, str | None]],
    batch_tasks: Iterable[tuple[str, str | None]],
    state_tasks: Iterable[str],
    lookups: FenceLookups,
) -> Refusal:
    """What to refuse of a batch, given the ``superseded`` runs.

    Args:
        batch_runs: ``(id, parent_flow_run_id)`` of the batch's flow runs.
        batch_tasks: ``(id, flow_run_id)`` of the batch's task runs.
        state_tasks: task run ids the batch's task states (and task logs) name.
    """
    batch_runs = list(batch_runs)
    runs = set(superseded)
    frontier = set(superseded)
    while frontier:  # subflows of refused runs, as deep as they go
        found = {rid for rid, parent in batch_runs if parent in frontier}
        found |= lookups.children(sorted(frontier))
        frontier = found - runs
        runs |= frontier
    owners = dict(batch_tasks)
    unknown = sorted(set(state_tasks) - owners.keys())
    if unknown:
        owners.update(lookups.task_owners(unknown))
    tasks = {tid for tid, owner in owners.items() if owner in runs}
    return Refusal(runs, tasks)


def without_refused(
    groups: Sequence[ValueGroup], superseded: set[str], lookups: FenceLookups
) -> list[ValueGroup]:
    """``groups`` without the records of ``superseded`` runs (and their subflows)."""
    by_name = dict(groups)

    def column(group: str, name: str) -> list[Any]:
        return column_of(group, by_name.get(group, ()), name)

    states = zip(column("states", "kind"), column("states", "run_id"), strict=True)
    named_tasks = [run_id for kind, run_id in states if kind == "task"]
    named_tasks += [t for t in column("logs", "task_run_id") if t is not None]
    refusal = refusal_for(
        superseded,
        zip(column("flow_runs", "id"), column("flow_runs", "parent_flow_run_id"), strict=True),
        zip(column("task_runs", "id"), column("task_runs", "flow_run_id"), strict=True),
        named_tasks,
        lookups,
    )
    kept: list[ValueGroup] = []
    for group, values in groups:
        at = {name: i for i, name in enumerate(COLUMNS[group])}
        rest = [row for row in values if not refusal.refuses(group, _reader(row, at))]
        if rest:
            kept.append((group, rest))
    return kept


def _reader(row: tuple[Any, ...], at: dict[str, int]) -> Callable[[str], Any]:
    def get(name: str) -> Any:
        i = at.get(name)
        return None if i is None else row[i]

    return get


__all__ = [
    "FENCES",
    "OWNERS",
    "FenceLookups",
    "Refusal",
    "fenced",
    "refusal_for",
    "superseded_runs",
    "without_refused",
]
