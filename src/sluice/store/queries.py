"""The store's reads: what the Backend protocol (and later the API) asks for.

Every function takes an open :class:`~sqlalchemy.Connection` (the caller owns
the transaction) and returns records of :mod:`sluice.schemas`. The few
conditions that differ by dialect (substring tests, id prefixes) are small
helpers here. Writes live in :mod:`sluice.store.writes`.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    Table,
    and_,
    func,
    or_,
    select,
)

from sluice.errors import AmbiguousIdError, NotFoundError
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.states import STAGED_STATE, StateType
from sluice.store import rows
from sluice.store.schema import flow, flow_run, log, run_state, task_run

#: how many candidates an ambiguous id prefix error lists
_AMBIGUOUS_SHOWN = 5


# -- flows -------------------------------------------------------------------------


def _normalized(name: str) -> str:
    return name.replace("-", "_")


def _flow_names_matching(conn: Connection, name: str) -> list[str]:
    """Stored flow names equal to ``name`` once dashes and underscores are unified."""
    stmt = select(flow.c.name).where(func.replace(flow.c.name, "-", "_") == _normalized(name))
    return list(conn.execute(stmt).scalars())


def get_flow(conn: Connection, name: str) -> FlowRecord:
    """A flow by name; ``my_flow`` and ``my-flow`` both match. Raises NotFoundError."""
    row = conn.execute(select(flow).where(flow.c.name == name)).mappings().first()
    if row is None:
        matches = sorted(_flow_names_matching(conn, name))
        if len(matches) > 1:
            raise AmbiguousIdError("flow", name, matches)
        if matches:
            row = conn.execute(select(flow).where(flow.c.name == matches[0])).mappings().first()
    if row is None:
        raise NotFoundError("flow", name)
    return rows.flow_from_row(row)


def list_flows(conn: Connection, limit: int = 200) -> list[FlowRecord]:
    """Flows, most recently created first."""
    stmt = select(flow).order_by(flow.c.created.desc(), flow.c.name)
    if limit > 0:
        stmt = stmt.limit(limit)
    return [rows.flow_from_row(r) for r in conn.execute(stmt).mappings()]


# -- lookups by id or prefix --------------------------------------------------------


def _id_prefix(conn: Connection, column: Column[Any], prefix: str) -> ColumnElement[bool]:
    if conn.dialect.name == "sqlite":
        # A range on the primary key uses its index (LIKE would not: SQLite's
        # LIKE is case-insensitive, so it cannot walk a binary index).
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return and_(column >= prefix, column < upper)
    return column.startswith(prefix, autoescape=True)


def _by_id_or_prefix(conn: Connection, table: Table, key: str, kind: str) -> Any:
    row = conn.execute(select(table).where(table.c.id == key)).mappings().first()
    if row is not None:
        return row
    if not key:
        raise NotFoundError(kind, key)
    stmt = select(table).where(_id_prefix(conn, table.c.id, key)).order_by(table.c.id)
    found = conn.execute(stmt.limit(_AMBIGUOUS_SHOWN + 1)).mappings().all()
    if not found:
        raise NotFoundError(kind, key)
    if len(found) > 1:
        raise AmbiguousIdError(kind, key, [r["id"] for r in found[:_AMBIGUOUS_SHOWN]])
    return found[0]


def get_flow_run(conn: Connection, run_id: str) -> FlowRunRecord:
    """A flow run by id or unique id prefix. Raises NotFoundError / AmbiguousIdError."""
    return rows.flow_run_from_row(_by_id_or_prefix(conn, flow_run, run_id, "flow run"))


def get_task_run(conn: Connection, run_id: str) -> TaskRunRecord:
    """A task run by id or unique id prefix. Raises NotFoundError / AmbiguousIdError."""
    return rows.task_run_from_row(_by_id_or_prefix(conn, task_run, run_id, "task run"))


# -- flow run listings ----------------------------------------------------------------


def _contains_text(conn: Connection, column: Column[Any], needle: str) -> ColumnElement[bool]:
    # Not LIKE: SQLite's LIKE ignores case, and tags are case-sensitive.
    if conn.dialect.name == "postgresql":
        return func.strpos(column, needle) > 0
    return func.instr(column, needle) > 0


def _flow_run_conditions(conn: Connection, flt: FlowRunFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if flt.flow_name:
        names = {flt.flow_name, _normalized(flt.flow_name), flt.flow_name.replace("_", "-")}
        names.update(_flow_names_matching(conn, flt.flow_name))
        conditions.append(flow_run.c.flow_name.in_(sorted(names)))
    if flt.state_types:
        types = sorted({getattr(t, "value", t) for t in flt.state_types})
        conditions.append(flow_run.c.state_type.in_(types))
    for tag in flt.tags or ():
        # Tags are stored as compact JSON, so an encoded tag is an exact substring.
        conditions.append(_contains_text(conn, flow_run.c.tags, rows.dumps(tag)))
    # A run that has not started yet is placed in time by its creation.
    started = func.coalesce(flow_run.c.start_time, flow_run.c.created)
    if flt.started_after is not None:
        conditions.append(started >= flt.started_after.timestamp())
    if flt.started_before is not None:
        conditions.append(started < flt.started_before.timestamp())
    if flt.parent_flow_run_id:
        conditions.append(flow_run.c.parent_flow_run_id == flt.parent_flow_run_id)
    return conditions


def list_flow_runs(conn: Connection, flt: FlowRunFilter) -> list[FlowRunRecord]:
    """Flow runs matching ``flt``, newest first, paged by ``limit``/``offset``.

    Time bounds apply to the start time, or the creation time of runs that
    have not started; ``limit <= 0`` means no limit.
    """
    stmt: Select[Any] = (
        select(flow_run)
        .where(*_flow_run_conditions(conn, flt))
        .order_by(flow_run.c.created.desc(), flow_run.c.id.desc())
    )
    if flt.limit > 0:
        stmt = stmt.limit(flt.limit)
    if flt.offset > 0:
        stmt = stmt.offset(flt.offset)
    return [rows.flow_run_from_row(r) for r in conn.execute(stmt).mappings()]


def count_flow_runs(conn: Connection, flt: FlowRunFilter) -> int:
    """How many flow runs match ``flt`` (ignoring limit and offset)."""
    stmt = select(func.count()).select_from(flow_run).where(*_flow_run_conditions(conn, flt))
    return int(conn.execute(stmt).scalar_one())


# -- task runs, states, logs ------------------------------------------------------------


def list_task_runs(conn: Connection, flow_run_id: str) -> list[TaskRunRecord]:
    """Task runs of a flow run, in creation order."""
    stmt = (
        select(task_run)
        .where(task_run.c.flow_run_id == flow_run_id)
        .order_by(task_run.c.created, task_run.c.id)
    )
    return [rows.task_run_from_row(r) for r in conn.execute(stmt).mappings()]


def find_cached_task_run(
    conn: Connection, cache_key: str, now: _dt.datetime
) -> TaskRunRecord | None:
    """The newest Completed task run with ``cache_key``, a result and an unexpired cache.

    "Newest" is the latest to finish (then the latest created); runs without
    a stored result or whose ``cache_expiration`` is not after ``now`` never match.
    """
    stmt = (
        select(task_run)
        .where(
            task_run.c.cache_key == cache_key,
            task_run.c.state_type == StateType.COMPLETED.value,
            task_run.c.state_name != STAGED_STATE,
            task_run.c.result.is_not(None),
            or_(
                task_run.c.cache_expiration.is_(None),
                task_run.c.cache_expiration > now.timestamp(),
            ),
        )
        .order_by(
            func.coalesce(task_run.c.end_time, task_run.c.updated).desc(),
            task_run.c.created.desc(),
            task_run.c.id.desc(),
        )
        .limit(1)
    )
    row = conn.execute(stmt).mappings().first()
    return None if row is None else rows.task_run_from_row(row)


def list_journal(conn: Connection, flow_run_id: str) -> list[TaskRunRecord]:
    """A flow run's journal: its Completed task runs with a stored result, oldest first."""
    stmt = (
        select(task_run)
        .where(
            task_run.c.flow_run_id == flow_run_id,
            task_run.c.state_type == StateType.COMPLETED.value,
            # a run whose transaction has not committed is not a result yet
            task_run.c.state_name != STAGED_STATE,
            task_run.c.result.is_not(None),
        )
        .order_by(task_run.c.created, task_run.c.id)
    )
    return [rows.task_run_from_row(r) for r in conn.execute(stmt).mappings()]


def list_states(conn: Connection, run_id: str) -> list[StateRecord]:
    """The state history of a flow or task run, in the order it was recorded."""
    stmt = select(run_state).where(run_state.c.run_id == run_id).order_by(run_state.c.id)
    return [rows.state_from_row(r) for r in conn.execute(stmt).mappings()]


def list_logs(
    conn: Connection,
    flow_run_id: str,
    *,
    task_run_id: str | None = None,
    min_level: int = 0,
    offset: int = 0,
    limit: int | None = None,
) -> list[LogRecord]:
    """Log lines of a flow run (or one of its task runs), in the order recorded."""
    stmt = select(log).where(log.c.flow_run_id == flow_run_id)
    if task_run_id is not None:
        stmt = stmt.where(log.c.task_run_id == task_run_id)
    if min_level > 0:
        stmt = stmt.where(log.c.level >= min_level)
    stmt = stmt.order_by(log.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    if offset > 0:
        stmt = stmt.offset(offset)
    return [rows.log_from_row(r) for r in conn.execute(stmt).mappings()]


__all__: Sequence[str] = [
    "count_flow_runs",
    "find_cached_task_run",
    "get_flow",
    "get_flow_run",
    "get_task_run",
    "list_flow_runs",
    "list_flows",
    "list_journal",
    "list_logs",
    "list_states",
    "list_task_runs",
]
