"""Appending state history and log lines that may be stored already.

A client that never saw the answer to an ingest request sends its records
again, and the server may have committed them the first time. Runs are
upserts, so only the appended records need care: :func:`write_resent`
stores each state or log row unless an identical one (every column but the
id) is held already. The comparison counts: a batch holding two identical
lines next to one stored copy stores one more, so records that really
repeat are kept.

Two records identical in every column, time included to the microsecond,
are taken for the same record; in practice only a re-sent one is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, and_, select

from sluice.store import writes
from sluice.store.rows import Row, RowBatch
from sluice.store.schema import log, run_state

#: ids per ``IN (...)`` list: well under any driver's limit on parameters
_CHUNK = 500

_STATE_COLUMNS = ("run_id", "kind", "type", "name", "timestamp", "message", "details")
_LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "logger", "message", "timestamp")


def write_resent(conn: Connection, rows: RowBatch) -> tuple[int, set[str]]:
    """Write a batch that may be stored already: its runs, flows and heartbeats as
    usual (upserts), and only the state and log rows not stored yet, in their
    order; how many of those were new, and the fenced runs a later attempt took
    over (their records refused, as by :func:`~sluice.store.writes.write_batch`).
    Run it in one write transaction (the look and the write must see the same
    database)."""
    postgres = conn.dialect.name == "postgresql"
    held_states = Counter(_held_states(conn, rows.states))
    held_logs = Counter(_held_logs(conn, rows.logs))
    new_states = _unmatched(rows.states, _STATE_COLUMNS, held_states, postgres)
    new_logs = _unmatched(rows.logs, _LOG_COLUMNS, held_logs, postgres)
    superseded = writes.write_batch(conn, replace(rows, states=new_states, logs=new_logs))
    return len(new_states) + len(new_logs), superseded


def _key(row: Any, columns: Sequence[str], postgres: bool) -> tuple[Hashable, ...]:
    values = tuple(row[c] for c in columns)
    if postgres:
        # PostgreSQL text holds no NUL: the writer stored U+FFFD instead.
        values = tuple(v.replace("\x00", "\ufffd") if type(v) is str else v for v in values)
    return values


def _unmatched(
    rows: list[Row], columns: Sequence[str], held: Counter[tuple[Hashable, ...]], postgres: bool
) -> list[Row]:
    new: list[Row] = []
    for row in rows:
        key = _key(row, columns, postgres)
        if held[key] > 0:
            held[key] -= 1
        else:
            new.append(row)
    return new


def _held_states(conn: Connection, states: list[Row]) -> Iterator[tuple[Hashable, ...]]:
    """The stored states of the runs ``states`` belong to (through the run_id index)."""
    columns = [run_state.c[name] for name in _STATE_COLUMNS]
    for chunk in _chunks(sorted({row["run_id"] for row in states})):
        stmt = select(*columns).where(run_state.c.run_id.in_(chunk))
        for found in conn.execute(stmt):
            yield tuple(found)


def _held_logs(conn: Connection, logs: list[Row]) -> Iterator[tuple[Hashable, ...]]:
    """The stored lines of the flow runs ``logs`` belong to, within their time span."""
    if not logs:
        return
    columns = [log.c[name] for name in _LOG_COLUMNS]
    low = min(row["timestamp"] for row in logs)
    high = max(row["timestamp"] for row in logs)
    in_span = and_(log.c.timestamp >= low, log.c.timestamp <= high)
    flow_run_ids = {row["flow_run_id"] for row in logs}
    conditions: list[ColumnElement[bool]] = []
    if None in flow_run_ids:
        flow_run_ids.discard(None)
        conditions.append(_is_null(log.c.flow_run_id))
    conditions.extend(log.c.flow_run_id.in_(chunk) for chunk in _chunks(sorted(flow_run_ids)))
    for condition in conditions:
        for found in conn.execute(select(*columns).where(condition, in_span)):
            yield tuple(found)


def _is_null(column: Column[Any]) -> ColumnElement[bool]:
    return column.is_(None)


def _chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
