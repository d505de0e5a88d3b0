"""The store's writes through SQLAlchemy: one batch of rows, one transaction.

A batch comes as write groups (:mod:`sluice.store.write_groups`). Runs are
upserted (``INSERT .. ON CONFLICT (id) DO UPDATE``, the columns each run's
declaration keeps left as stored), state history and logs appended,
heartbeats applied last. SQLite and PostgreSQL both support
``ON CONFLICT`` but through different SQLAlchemy constructs, so statements
are built per dialect and cached.

These statements are the one definition of what a batch write does. On
PostgreSQL they run from here; the embedded SQLite writer runs the same
statements compiled ahead of time into :mod:`sluice.store.sqlite_sql`, so a
flow run never imports SQLAlchemy.
"""

from __future__ import annotations

import datetime as _dt
import functools
import operator
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Insert,
    Table,
    bindparam,
    case,
    func,
    or_,
    select,
    update,
)

from sluice.errors import StoreError
from sluice.liveness import lapse_threshold, next_attempt
from sluice.states import TERMINAL_TYPES, StateType
from sluice.store import fencing
from sluice.store.clock import db_now, read_db_now
from sluice.store.rows import FLOW_RUN, TASK_RUN, RecordCodec, Row
from sluice.store.schema import flow, flow_run, log, run_state, task_run
from sluice.store.write_groups import COLUMNS, KEYED_GROUPS, ValueGroup


def write_batch(conn: Connection, groups: Sequence[ValueGroup]) -> set[str]:
    """Write a batch's groups (:mod:`sluice.store.write_groups`) in the order given.

    The batch's fences are checked first (:mod:`sluice.store.fencing`): the
    records of runs a later attempt took over are left out. Returns those
    runs (empty when the writer still holds every run it fenced).

    Upserted rows are written in order of their id, so two PostgreSQL
    transactions touching the same runs take their row locks in the same
    order and cannot deadlock.
    """
    todo, superseded = fencing.fenced(groups, _Lookups(conn))
    statements = write_statements(conn.dialect.name)
    postgres = conn.dialect.name == "postgresql"
    for name, values in todo:
        if not values:
            continue
        if name in KEYED_GROUPS:
            values = sorted(values, key=operator.itemgetter(0))
        if postgres:
            values = [_without_nul(row) for row in values]
        _executemany(conn, statements[name], COLUMNS[name], values)
    return superseded


class _Lookups:
    """:class:`~sluice.store.fencing.FenceLookups` through SQLAlchemy Core."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def attempts(self, run_ids: list[str]) -> dict[str, int | None]:
        stmt = select(flow_run.c.id, flow_run.c.attempt).where(flow_run.c.id.in_(run_ids))
        return {rid: n for rid, n in self._conn.execute(stmt)}

    def children(self, run_ids: list[str]) -> set[str]:
        stmt = select(flow_run.c.id).where(flow_run.c.parent_flow_run_id.in_(run_ids))
        return set(self._conn.execute(stmt).scalars())

    def task_owners(self, task_ids: list[str]) -> dict[str, str | None]:
        stmt = select(task_run.c.id, task_run.c.flow_run_id).where(task_run.c.id.in_(task_ids))
        return {tid: owner for tid, owner in self._conn.execute(stmt)}


#: task run states a crashed flow run leaves unfinished (every non-final one)
_UNFINISHED = tuple(sorted(t.value for t in StateType if t not in TERMINAL_TYPES))


def mark_lapsed_runs_crashed(conn: Connection, timeout: float) -> list[str]:
    """Mark Running flow runs silent for ``timeout`` seconds Crashed; their ids.

    Silence is measured with the database's clock, the one heartbeats are
    stamped with (:mod:`sluice.store.clock`): the observer's clock, and the
    running host's, play no part. A run's last sign of life is its
    heartbeat, else its start, else its creation. Each run is flipped by an UPDATE
    that re-checks that it is still Running and lapsed, and only runs this
    call actually flipped get a history row, their unfinished task runs
    flipped too: two processes (or a run's last heartbeat) racing this call
    mark a run at most once. Flow runs are updated before task runs, each in
    id order, the order batch writes take row locks in (no deadlocks on
    PostgreSQL). Run it inside one write transaction.
    """
    now = read_db_now(conn)
    last_seen = func.coalesce(flow_run.c.heartbeat, flow_run.c.start_time, flow_run.c.created)
    lapsed = (
        flow_run.c.state_type == StateType.RUNNING.value,
        last_seen < lapse_threshold(now, timeout),
    )
    candidates = conn.execute(
        select(flow_run.c.id, last_seen).where(*lapsed).order_by(flow_run.c.id)
    ).all()
    return _mark_crashed(
        conn,
        [
            (run_id, lapsed, f"no heartbeat since {_format_time(seen)}")
            for run_id, seen in candidates
        ],
        now,
    )


def mark_gone_runs_crashed(
    conn: Connection, runs: list[tuple[str, str, int, int]], now: float | None = None
) -> list[str]:
    """Mark Running flow runs whose process is known to be gone Crashed; their ids.

    ``runs`` holds ``(id, host_id, pid, pid_started)`` as the observer read
    them: a run is marked only if it is still Running with that very process
    (a run resumed meanwhile by another process is left alone).
    """
    at = read_db_now(conn) if now is None else now
    found = []
    for run_id, host, pid, started in sorted(runs):
        still = (
            flow_run.c.state_type == StateType.RUNNING.value,
            flow_run.c.host_id == host,
            flow_run.c.pid == pid,
            flow_run.c.pid_started == started,
        )
        found.append((run_id, still, f"its process (pid {pid}) is gone from its host"))
    return _mark_crashed(conn, found, at)


def _mark_crashed(
    conn: Connection, runs: list[tuple[str, tuple[Any, ...], str]], now: float
) -> list[str]:
    """Flip each ``(id, conditions, why)`` run to Crashed if its conditions still hold,
    with its unfinished task runs; the ids flipped."""
    marked: list[tuple[str, str]] = []
    for run_id, lapsed, why in runs:
        message = _crash_message(why)
        done = conn.execute(
            update(flow_run)
            .where(flow_run.c.id == run_id, *lapsed)
            .values(
                state_type=StateType.CRASHED.value,
                state_name="Crashed",
                state_message=message,
                end_time=now,
                updated=now,
            )
        )
        if done.rowcount == 1:
            marked.append((run_id, why))
            conn.execute(run_state.insert().values(_crashed_state(run_id, "flow", message, now)))
    if not marked:
        return []
    why_by_run = dict(marked)
    tasks = conn.execute(
        select(task_run.c.id, task_run.c.flow_run_id)
        .where(
            task_run.c.flow_run_id.in_(sorted(why_by_run)),
            task_run.c.state_type.in_(_UNFINISHED),
        )
        .order_by(task_run.c.id)
    ).all()
    for task_id, run_id in tasks:
        message = f"Its flow run crashed ({why_by_run[run_id]}); marked Crashed"
        done = conn.execute(
            update(task_run)
            .where(task_run.c.id == task_id, task_run.c.state_type.in_(_UNFINISHED))
            .values(
                state_type=StateType.CRASHED.value,
                state_name="Crashed",
                state_message=message,
                end_time=now,
                updated=now,
            )
        )
        if done.rowcount == 1:
            conn.execute(run_state.insert().values(_crashed_state(task_id, "task", message, now)))
    return [run_id for run_id, _ in marked]


def claim_attempt(conn: Connection, run_id: str) -> int | None:
    """Take the next attempt of flow run ``run_id`` for a process about to execute it;
    the number taken (None: no such run). From then on the store refuses
    writes fenced with an earlier attempt. Run it inside one write transaction."""
    stored = conn.execute(select(flow_run.c.attempt).where(flow_run.c.id == run_id)).first()
    if stored is None:
        return None
    attempt = next_attempt(stored[0])
    conn.execute(
        update(flow_run)
        .where(flow_run.c.id == run_id)
        .values(attempt=func.coalesce(flow_run.c.attempt, 0) + 1)
    )
    return attempt


def read_attempt(conn: Connection, run_id: str) -> int | None:
    """The stored attempt of flow run ``run_id`` (None: no such run)."""
    row = conn.execute(select(flow_run.c.attempt).where(flow_run.c.id == run_id)).first()
    return None if row is None else int(row[0] or 0)


def _crash_message(why: str) -> str:
    if why.startswith("no heartbeat"):
        return f"N{why[1:]} (the process running it is gone); marked Crashed"
    return f"I{why[1:]}; marked Crashed"


def _format_time(epoch: float) -> str:
    moment = _dt.datetime.fromtimestamp(epoch, _dt.timezone.utc)
    return moment.isoformat(sep=" ", timespec="seconds").replace("+00:00", " UTC")


def _crashed_state(run_id: str, kind: str, message: str, now: float) -> Row:
    return {
        "run_id": run_id,
        "kind": kind,
        "type": StateType.CRASHED.value,
        "name": "Crashed",
        "timestamp": now,
        "message": message,
        "details": None,
    }


def _without_nul(row: tuple[Any, ...]) -> tuple[Any, ...]:
    # PostgreSQL text cannot hold NUL characters; one in a log line must not
    # make the whole batch fail forever. SQLite keeps them as they are.
    if not any(type(v) is str and "\x00" in v for v in row):
        return row
    return tuple(v.replace("\x00", "\ufffd") if type(v) is str else v for v in row)


def _executemany(
    conn: Connection, stmt: Any, columns: tuple[str, ...], values: Sequence[tuple[Any, ...]]
) -> None:
    """Execute ``stmt`` once per row of ``values`` (tuples in ``columns`` order), handing
    them to the driver directly.

    SQLAlchemy's per-row parameter processing costs more than SQLite's own
    insert. Our values are only str, int, float and None, which every driver
    takes as they are, so the statement is compiled once and the rows go to
    the DBAPI ``executemany`` as tuples (positional drivers) or dicts (named ones).
    """
    sql, params_of = _compiled(conn.dialect, stmt, columns)
    conn.exec_driver_sql(sql, list(map(params_of, values)))


_compiled_cache: dict[tuple[Any, ...], tuple[str, Any]] = {}


def _compiled(dialect: Any, stmt: Any, columns: tuple[str, ...]) -> tuple[str, Any]:
    """The SQL of ``stmt`` for ``dialect`` setting ``columns``, and what makes a row's
    parameters of its value tuple."""
    cache_key = (type(dialect), dialect.paramstyle, stmt, columns)
    found = _compiled_cache.get(cache_key)
    if found is None:
        sql, order = compile_statement(stmt, dialect, columns)
        if not order:  # named parameters
            found = (sql, lambda row: dict(zip(columns, row, strict=True)))
        elif order == columns:
            found = (sql, tuple)
        else:
            at = [columns.index(key) for key in order]
            found = (sql, lambda row: tuple(row[i] for i in at))
        _compiled_cache[cache_key] = found
    return found


def compile_statement(
    stmt: Any, dialect: Any, keys: tuple[str, ...] | list[str]
) -> tuple[str, tuple[str, ...]]:
    """``stmt`` as SQL text for ``dialect``, setting the columns in ``keys``.

    Returns the text and, for a positional paramstyle, the row key each
    placeholder takes in order (empty for named paramstyles).
    """
    compiled = stmt.compile(dialect=dialect, column_keys=list(keys))
    return compiled.string, tuple(compiled.positiontup or ())


@functools.cache
def write_statements(dialect: str) -> Mapping[str, Any]:
    """The statement writing each write group (by group name), for ``dialect``."""
    insert = _dialect_insert(dialect)
    return {
        # A flow known by name (or id) is kept as it is.
        "flows": insert(flow).on_conflict_do_nothing(),
        "flow_runs": _upsert(insert, flow_run, FLOW_RUN),
        "task_runs": _upsert(insert, task_run, TASK_RUN),
        "states": run_state.insert(),
        "logs": log.insert(),
        # Stamped with the database's clock, never the sender's (one clock).
        "heartbeats": update(flow_run)
        .where(flow_run.c.id == bindparam("b_id"))
        .where(or_(flow_run.c.heartbeat.is_(None), flow_run.c.heartbeat < db_now()))
        .values(heartbeat=db_now()),
    }


def _dialect_insert(dialect: str) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    raise StoreError(f"Sluice's store supports SQLite and PostgreSQL, not {dialect}")


def _upsert(insert: Any, table: Table, codec: RecordCodec[Any]) -> Insert:
    """``INSERT .. ON CONFLICT (id) DO UPDATE`` every column but ``id`` and those the
    record's declaration keeps (its creation time, what the store's own operations
    set, what the store stamps).

    ``forward`` columns only move forward: a later snapshot that carries an
    older (or no) value, e.g. a flow run row upserted after a buffered
    heartbeat, never rolls the column back.
    """
    stmt = insert(table)
    excluded = stmt.excluded
    values: dict[str, Any] = {}
    for column in table.c:
        if column.primary_key or column.name in codec.kept:
            continue
        if column.name in codec.forward:
            values[column.name] = _forward_only(column, excluded[column.name])
        else:
            values[column.name] = excluded[column.name]
    upsert: Insert = stmt.on_conflict_do_update(index_elements=[table.c.id], set_=values)
    return upsert


def _forward_only(current: Column[Any], new: Any) -> ColumnElement[Any]:
    return case(
        (new.is_(None), current),
        (current.is_(None), new),
        (new > current, new),
        else_=current,
    )


__all__ = [
    "claim_attempt",
    "compile_statement",
    "mark_gone_runs_crashed",
    "mark_lapsed_runs_crashed",
    "read_attempt",
    "write_batch",
    "write_statements",
]
