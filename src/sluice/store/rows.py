"""Conversions between the records of :mod:`sluice.schemas` and table rows.

Writes go in two steps because the engine keeps mutating the records it hands
over: a *snapshot* (a plain tuple, taken on the caller's thread; it must cost
well under a microsecond, so it copies references and nothing else) and a
*row* (a dict of column values, built later on the writer thread, where JSON
encoding and time conversion happen only for the snapshots that survive
coalescing). Records written rarely (flows, flow runs) go straight to rows.

Times become epoch seconds, JSON-ish fields become compact JSON text.
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from sluice.schemas import (
    FlowRecord,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.states import StateType

Row = dict[str, Any]
_UTC = _dt.timezone.utc


def _json_default(value: Any) -> str:
    # A value the engine did not make JSON-safe must not break the writer:
    # it is kept as its repr rather than losing the whole batch.
    return repr(value)


#: The one JSON encoder of the store. Compact separators keep rows small and
#: make ``"tag"`` a reliable substring of an encoded tag list (see queries).
dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default).encode


_EMPTY_JSON = frozenset({"[]", "{}"})


def _loads(text: str | None, empty: Any) -> Any:
    # Most tag and upstream lists are empty: skip the decoder for them (a
    # journal of 10,000 task runs decodes three of these per row).
    if text is None or text in _EMPTY_JSON:
        return type(empty)() if isinstance(empty, (list, dict)) else empty
    return json.loads(text)


def ts(value: _dt.datetime | None) -> float | None:
    """A datetime as epoch seconds (``None`` stays ``None``)."""
    return None if value is None else value.timestamp()


def dt(value: float | None) -> _dt.datetime | None:
    """Epoch seconds as a UTC datetime (``None`` stays ``None``)."""
    return None if value is None else _dt.datetime.fromtimestamp(value, _UTC)


def _dt_required(value: float) -> _dt.datetime:
    return _dt.datetime.fromtimestamp(value, _UTC)


def _list_json(values: tuple[str, ...] | list[str]) -> str:
    return dumps(list(values)) if values else "[]"


# -- flows and flow runs: converted at once ------------------------------------


def flow_row(rec: FlowRecord) -> Row:
    """The ``flow`` row of a flow record."""
    return {
        "id": rec.id,
        "name": rec.name,
        "description": rec.description,
        "version": rec.version,
        "created": rec.created.timestamp(),
    }


def flow_run_row(rec: FlowRunRecord) -> Row:
    """The ``flow_run`` row of a flow run record."""
    return {
        "id": rec.id,
        "flow_name": rec.flow_name,
        "name": rec.name,
        "parameters": dumps(rec.parameters),
        "tags": _list_json(rec.tags),
        "state_type": rec.state_type.value,
        "state_name": rec.state_name,
        "state_message": rec.state_message,
        "run_count": rec.run_count,
        "start_time": ts(rec.start_time),
        "end_time": ts(rec.end_time),
        "created": rec.created.timestamp(),
        "updated": rec.updated.timestamp(),
        "heartbeat": ts(rec.heartbeat),
        "parent_flow_run_id": rec.parent_flow_run_id,
        "parent_task_run_id": rec.parent_task_run_id,
        "flow_version": rec.flow_version,
        "hostname": rec.hostname,
        "pid": rec.pid,
        "result": rec.result,
        "entrypoint": rec.entrypoint,
        "parameters_ref": rec.parameters_ref,
    }


# -- task runs, states, logs: snapshot now, row later --------------------------

TaskRunSnapshot = tuple[Any, ...]
StateSnapshot = tuple[Any, ...]
LogSnapshot = tuple[Any, ...]


def task_run_snapshot(r: TaskRunRecord) -> TaskRunSnapshot:
    """An immutable copy of a task run record (lists copied as tuples)."""
    return (
        r.id,
        r.task_name,
        r.name,
        r.flow_run_id,
        r.call_index,
        r.map_index,
        tuple(r.tags),
        tuple(r.upstream_ids),
        r.state_type,
        r.state_name,
        r.state_message,
        r.run_count,
        r.start_time,
        r.end_time,
        r.created,
        r.updated,
        r.cache_key,
        r.result,
        r.cache_expiration,
        r.input_hash,
    )


def task_run_row(s: TaskRunSnapshot) -> Row:
    """The ``task_run`` row of a snapshot from :func:`task_run_snapshot`."""
    return {
        "id": s[0],
        "task_name": s[1],
        "name": s[2],
        "flow_run_id": s[3],
        "call_index": s[4],
        "map_index": s[5],
        "tags": _list_json(s[6]),
        "upstream_ids": _list_json(s[7]),
        "state_type": s[8].value,
        "state_name": s[9],
        "state_message": s[10],
        "run_count": s[11],
        "start_time": ts(s[12]),
        "end_time": ts(s[13]),
        "created": s[14].timestamp(),
        "updated": s[15].timestamp(),
        "cache_key": s[16],
        "result": s[17],
        "cache_expiration": ts(s[18]),
        "input_hash": s[19],
    }


def state_snapshot(r: StateRecord) -> StateSnapshot:
    """An immutable copy of a state record (details encoded now: it is a dict)."""
    details = None if r.details is None else dumps(r.details)
    return (r.run_id, r.kind, r.type, r.name, r.timestamp, r.message, details)


def state_row(s: StateSnapshot) -> Row:
    """The ``run_state`` row of a snapshot from :func:`state_snapshot`."""
    return {
        "run_id": s[0],
        "kind": s[1],
        "type": s[2].value,
        "name": s[3],
        "timestamp": s[4].timestamp(),
        "message": s[5],
        "details": s[6],
    }


def log_snapshot(r: LogRecord) -> LogSnapshot:
    """An immutable copy of a log record."""
    return (r.flow_run_id, r.task_run_id, r.level, r.logger, r.message, r.timestamp)


def log_row(s: LogSnapshot) -> Row:
    """The ``log`` row of a snapshot from :func:`log_snapshot`."""
    return {
        "flow_run_id": s[0],
        "task_run_id": s[1],
        "level": s[2],
        "logger": s[3],
        "message": s[4],
        "timestamp": s[5].timestamp(),
    }


def heartbeat_row(flow_run_id: str, at: float) -> Row:
    """The parameters of a heartbeat update (``at`` in epoch seconds)."""
    return {"b_id": flow_run_id, "b_heartbeat": at}


# -- a batch of rows, as written in one transaction -----------------------------

#: The groups of a :class:`RowBatch` in the order they are written, each with
#: the key its rows are sorted by (``None``: kept in arrival order). Runs come
#: before their history and logs, heartbeats last.
WRITE_ORDER: tuple[tuple[str, str | None], ...] = (
    ("flows", None),
    ("flow_runs", "id"),
    ("task_runs", "id"),
    ("states", None),
    ("logs", None),
    ("heartbeats", "b_id"),
)


@dataclass
class RowBatch:
    """Rows to write in one transaction (see :data:`WRITE_ORDER`)."""

    flows: list[Row] = field(default_factory=list)
    flow_runs: list[Row] = field(default_factory=list)
    task_runs: list[Row] = field(default_factory=list)
    states: list[Row] = field(default_factory=list)
    logs: list[Row] = field(default_factory=list)
    #: rows from :func:`heartbeat_row` (update parameters)
    heartbeats: list[Row] = field(default_factory=list)

    def in_write_order(self) -> Iterator[tuple[str, list[Row]]]:
        """The non-empty groups as ``(name, rows)``, in :data:`WRITE_ORDER`.

        Upserted rows are sorted by id so two PostgreSQL transactions touching
        the same runs take their row locks in the same order and cannot
        deadlock (on SQLite, which has one writer at a time, it is harmless).
        """
        for name, key in WRITE_ORDER:
            group: list[Row] = getattr(self, name)
            if group:
                yield name, (sorted(group, key=itemgetter(key)) if key else group)


# -- rows back to records -------------------------------------------------------


def flow_from_row(m: Mapping[Any, Any]) -> FlowRecord:
    """A flow record from a ``flow`` row."""
    return FlowRecord(
        name=m["name"],
        id=m["id"],
        description=m["description"],
        version=m["version"],
        created=_dt_required(m["created"]),
    )


def flow_run_from_row(m: Mapping[Any, Any]) -> FlowRunRecord:
    """A flow run record from a ``flow_run`` row."""
    return FlowRunRecord(
        id=m["id"],
        flow_name=m["flow_name"],
        name=m["name"],
        parameters=_loads(m["parameters"], {}),
        tags=_loads(m["tags"], []),
        state_type=StateType(m["state_type"]),
        state_name=m["state_name"],
        state_message=m["state_message"],
        run_count=m["run_count"],
        start_time=dt(m["start_time"]),
        end_time=dt(m["end_time"]),
        created=_dt_required(m["created"]),
        updated=_dt_required(m["updated"]),
        heartbeat=dt(m["heartbeat"]),
        parent_flow_run_id=m["parent_flow_run_id"],
        parent_task_run_id=m["parent_task_run_id"],
        flow_version=m["flow_version"],
        hostname=m["hostname"],
        pid=m["pid"],
        result=m["result"],
        entrypoint=m["entrypoint"],
        parameters_ref=m["parameters_ref"],
        deployment_id=m["deployment_id"],
        work_pool_name=m["work_pool_name"],
        work_queue_name=m["work_queue_name"],
        scheduled_start_time=dt(m["scheduled_start_time"]),
        idempotency_key=m["idempotency_key"],
        worker_name=m["worker_name"],
    )


def task_run_from_row(m: Mapping[Any, Any]) -> TaskRunRecord:
    """A task run record from a ``task_run`` row."""
    return TaskRunRecord(
        id=m["id"],
        task_name=m["task_name"],
        name=m["name"],
        flow_run_id=m["flow_run_id"],
        call_index=m["call_index"],
        map_index=m["map_index"],
        tags=_loads(m["tags"], []),
        upstream_ids=_loads(m["upstream_ids"], []),
        state_type=StateType(m["state_type"]),
        state_name=m["state_name"],
        state_message=m["state_message"],
        run_count=m["run_count"],
        start_time=dt(m["start_time"]),
        end_time=dt(m["end_time"]),
        created=_dt_required(m["created"]),
        updated=_dt_required(m["updated"]),
        cache_key=m["cache_key"],
        cache_expiration=dt(m["cache_expiration"]),
        input_hash=m["input_hash"],
        result=m["result"],
    )


def state_from_row(m: Mapping[Any, Any]) -> StateRecord:
    """A state record from a ``run_state`` row."""
    return StateRecord(
        run_id=m["run_id"],
        kind=m["kind"],
        type=StateType(m["type"]),
        name=m["name"],
        timestamp=_dt_required(m["timestamp"]),
        message=m["message"],
        details=_loads(m["details"], None),
    )


def log_from_row(m: Mapping[Any, Any]) -> LogRecord:
    """A log record from a ``log`` row."""
    return LogRecord(
        flow_run_id=m["flow_run_id"],
        task_run_id=m["task_run_id"],
        level=m["level"],
        logger=m["logger"],
        message=m["message"],
        timestamp=_dt_required(m["timestamp"]),
    )
