"""The store's writes: one batch of rows, one transaction, as few statements as possible.

Runs are upserted (``INSERT .. ON CONFLICT (id) DO UPDATE``), state history
and logs appended, heartbeats applied last. SQLite and PostgreSQL both support
``ON CONFLICT`` but through different SQLAlchemy constructs, so statements
are built per dialect and cached.
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Insert,
    Table,
    bindparam,
    case,
    or_,
    update,
)

from sluice.errors import StoreError
from sluice.store.rows import Row
from sluice.store.schema import flow, flow_run, log, run_state, task_run


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


def write_batch(conn: Connection, batch: RowBatch) -> None:
    """Write a whole batch: flows, flow runs, task runs, states, logs, heartbeats."""
    statements = _write_statements(conn.dialect.name)
    text_fixer = _without_nul if conn.dialect.name == "postgresql" else None
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
            if text_fixer is not None:
                ordered = [text_fixer(row) for row in ordered]
            _executemany(conn, stmt, ordered)


def _without_nul(row: Row) -> Row:
    # PostgreSQL text cannot hold NUL characters; one in a log line must not
    # make the whole batch fail forever. SQLite keeps them as they are.
    if not any(type(v) is str and "\x00" in v for v in row.values()):
        return row
    return {k: v.replace("\x00", "\ufffd") if type(v) is str else v for k, v in row.items()}


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
    conn.exec_driver_sql(sql, params)


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
        # A flow known by name (or id) is kept as it is.
        flows=insert(flow).on_conflict_do_nothing(),
        flow_runs=_upsert(insert, flow_run, keep=("created",), monotonic=("heartbeat",)),
        task_runs=_upsert(insert, task_run, keep=("created",)),
        states=run_state.insert(),
        logs=log.insert(),
        heartbeats=update(flow_run)
        .where(flow_run.c.id == bindparam("b_id"))
        .where(or_(flow_run.c.heartbeat.is_(None), flow_run.c.heartbeat < bindparam("b_heartbeat")))
        .values(heartbeat=bindparam("b_heartbeat")),
    )


def _dialect_insert(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise StoreError(f"Sluice's store supports SQLite and PostgreSQL, not {dialect}")


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
    return stmt.on_conflict_do_update(index_elements=[table.c.id], set_=values)


def _forward_only(current: Column[Any], new: Any) -> ColumnElement[Any]:
    return case(
        (new.is_(None), current),
        (current.is_(None), new),
        (new > current, new),
        else_=current,
    )


__all__ = ["RowBatch", "write_batch"]
