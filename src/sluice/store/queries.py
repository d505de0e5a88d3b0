"""The store's SQL: batched writes and the reads the Backend protocol needs.

Every function takes an open :class:`~sqlalchemy.Connection` (the caller owns
the transaction) and speaks rows and records, never snapshots or HTTP.
Statements that differ by dialect (upserts, substring tests, id prefixes) are
built per dialect and cached, since SQLite and PostgreSQL both support
``INSERT .. ON CONFLICT`` but through different SQLAlchemy constructs.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Insert,
    Select,
    Table,
    and_,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from sluice.errors import AmbiguousIdError, NotFoundError, StoreError
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.store import rows
from sluice.store.rows import Row
from sluice.store.schema import flow, flow_run, log, run_state, task_run

#: how many candidates an ambiguous id prefix error lists
_AMBIGUOUS_SHOWN = 5


@dataclass
class RowBatch:
    """Rows to write in one transaction, in dependency order."""

    flows: list[Row] = field(default_factory=list)
    flow_runs: list[Row] = field(default_factory=list)
    task_runs: list[Row] = field(default_factory=list)
    states: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    #: ``{"b_id": flow_run_id, "b_heartbeat": epoch seconds}`` rows (update parameters)
    heartbeats: list[Row] = field(default_factory=list)


# -- writes ----------------------------------------------------------------------


def write_batch(conn: Connection, batch: RowBatch) -> None:
    """Write a whole batch: flows, flow runs, task runs, states, logs, heartbeats."""
    statements = _write_statements(conn.dialect.name)
    # Sorted by id so two PostgreSQL transactions upserting overlapping runs
    # take row locks in the same order and cannot deadlock.
    for stmt, batch_rows, key in (
        (statements.flows, batch.flows, None),
        (statements.flow_runs, batch.flow_runs, "id"),
        (statements.task_runs, batch.task_runs, "id"),
        (statements.states, batch.states, None),
        (statements.logs, batch.logs, None),
        (statements.heartbeats, batch.heartbeats, "b_id"),
    ):
        if batch_rows:
            ordered = sorted(batch_rows, key=lambda r: r[key]) if key else batch_rows
            _executemany(conn, stmt, ordered)


def _executemany(conn: Connection, stmt: Any, batch_rows: list[Row]) -> None:
    """Execute ``stmt`` once per row, handing the rows to the driver directly.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own
    insert. Our rows hold only str, int, float and None, which every driver
    takes as they are, so the statement is compiled once and the rows go to
    the DBAPI ``executemany`` as tuples (positional drivers) or as the dicts
    they already are (named ones).
    """
    sql, getter = _compiled(conn.dialect, stmt, tuple(batch_rows[0]))
    params = [getter(row) for row in batch_rows] if getter is not None else batch_rows
    conn.exec_driver_sql(sql, params)  # type: ignore[arg-type]


_compiled_cache: dict[tuple[Any, ...], tuple[str, Any]] = {}


def _compiled(dialect: Any, stmt: Any, keys: tuple[str, ...]) -> tuple[str, Any]:
    cache_key = (type(dialect), dialect.paramstyle, stmt, keys)
    found = _compiled_cache.get(cache_key)
    if found is None:
        compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
        order = compiled.positiontup
        if not order:
            found = (compiled.string, None)
        elif len(order) == 1:
            found = (compiled.string, lambda row, k=order[0]: (row[k],))
        else:
            found = (compiled.string, operator.itemgetter(*order))
        _compiled_cache[cache_key] = found
    return found


@dataclass(frozen=True)
class _WriteStatements:
    flows: Insert
    flow_runs: Insert
    task_runs: Insert
    states: Insert
    logs: Insert
    heartbeats: Any


@functools.cache
def _write_statements(dialect: str) -> _WriteStatements:
    insert = _dialect_insert(dialect)
    return _WriteStatements(
        flows=insert(flow).on_conflict_do_nothing(index_elements=[flow.c.name]),
        flow_runs=_upsert(insert, flow_run, keep=("created",), monotonic=("heartbeat",)),
        task_runs=_upsert(insert, task_run, keep=("created",)),
        states=run_state.insert(),
        logs=log.insert(),
        heartbeats=update(flow_run)
        .where(flow_run.c.id == bindparam("b_id"))
        .where(
            or_(flow_run.c.heartbeat.is_(None), flow_run.c.heartbeat < bindparam("b_heartbeat"))
        )
        .values(heartbeat=bindparam("b_heartbeat")),
    )


def _dialect_insert(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        raise StoreError(f"Sluice's store supports SQLite and PostgreSQL, not {dialect}")
    return insert


def _upsert(
    insert: Any, table: Table, keep: tuple[str, ...], monotonic: tuple[str, ...] = ()
) -> Insert:
    """``INSERT .. ON CONFLICT (id) DO UPDATE`` every column but ``id`` and ``keep``.

    ``monotonic`` columns only move forward: a later snapshot that carries an
    older (or no) value, e.g. a flow run row upserted after a buffered
    heartbeat, never rolls the column back.
    """
    stmt = insert(table)
    excluded = stmt.excluded
    values: dict[str, Any] = {}
    for column in table.c:
        if column.primary_key or column.name in keep:
            continue
        if column.name in monotonic:
            values[column.name] = _forward_only(column, excluded[column.name])
        else:
            values[column.name] = excluded[column.name]
    return stmt.on_conflict_do_update(index_elements=[table.c.id], set_=values)  # type: ignore[no-any-return]


def _forward_only(current: Column[Any], new: Any) -> ColumnElement[Any]:
    return case(
        (new.is_(None), current),
        (current.is_(None), new),
        (new > current, new),
        else_=current,
    )


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
    "RowBatch",
    "count_flow_runs",
    "get_flow",
    "get_flow_run",
    "get_task_run",
    "list_flow_runs",
    "list_flows",
    "list_logs",
    "list_states",
    "list_task_runs",
    "write_batch",
]
