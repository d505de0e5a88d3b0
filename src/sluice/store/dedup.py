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
from typing import Any

from sqlalchemy import Column, ColumnElement, Connection, and_, select

from sluice.store import writes
from sluice.store.schema import log, run_state
from sluice.store.write_groups import COLUMNS, ValueGroup

#: ids per ``IN (...)`` list: well under any driver's limit on parameters
_CHUNK = 500

_STATE_COLUMNS = COLUMNS["states"]
_LOG_COLUMNS = COLUMNS["logs"]

Values = tuple[Any, ...]


def write_resent(conn: Connection, groups: Sequence[ValueGroup]) -> tuple[int, set[str]]:
    """Write a batch's groups that may be stored already: its runs, flows and heartbeats
    as usual (upserts), and only the state and log rows not stored yet, in their
    order; how many of those were new, and the fenced runs a later attempt took
    over (their records refused, as by :func:`~sluice.store.writes.write_batch`).
    Run it in one write transaction (the look and the write must see the same
    database)."""
    postgres = conn.dialect.name == "postgresql"
    by_name = dict(groups)
    states, logs = by_name.get("states", ()), by_name.get("logs", ())
    new_states = _unmatched(states, Counter(_held_states(conn, states)), postgres)
    new_logs = _unmatched(logs, Counter(_held_logs(conn, logs)), postgres)
    new = {"states": new_states, "logs": new_logs}
    superseded = writes.write_batch(conn, [(name, new.get(name, v)) for name, v in groups])
    return len(new_states) + len(new_logs), superseded


def _key(row: Values, postgres: bool) -> tuple[Hashable, ...]:
    if postgres:
        # PostgreSQL text holds no NUL: the writer stored U+FFFD instead.
        return tuple(v.replace("\x00", "\ufffd") if type(v) is str else v for v in row)
    return row


def _unmatched(
    rows: Sequence[Values], held: Counter[tuple[Hashable, ...]], postgres: bool
) -> list[Values]:
    new: list[Values] = []
    for row in rows:
        key = _key(row, postgres)
        if held[key] > 0:
            held[key] -= 1
        else:
            new.append(row)
    return new


def _held_states(conn: Connection, states: Sequence[Values]) -> Iterator[tuple[Hashable, ...]]:
    """The stored states of the runs ``states`` belong to (through the run_id index)."""
    columns = [run_state.c[name] for name in _STATE_COLUMNS]
    run_id = _STATE_COLUMNS.index("run_id")
    for chunk in _chunks(sorted({row[run_id] for row in states})):
        stmt = select(*columns).where(run_state.c.run_id.in_(chunk))
        for found in conn.execute(stmt):
            yield tuple(found)


def _held_logs(conn: Connection, logs: Sequence[Values]) -> Iterator[tuple[Hashable, ...]]:
    """The stored lines of the flow runs ``logs`` belong to, within their time span."""
    if not logs:
        return
    columns = [log.c[name] for name in _LOG_COLUMNS]
    at, run = _LOG_COLUMNS.index("timestamp"), _LOG_COLUMNS.index("flow_run_id")
    low = min(row[at] for row in logs)
    high = max(row[at] for row in logs)
    in_span = and_(log.c.timestamp >= low, log.c.timestamp <= high)
    flow_run_ids = {row[run] for row in logs}
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
