"""Conversions between the records of :mod:`sluice.schemas` and table rows.

Writes go in two steps because the engine keeps mutating the records it hands
over: a *snapshot* (a plain tuple, taken on the caller's thread; it must cost
well under a microsecond, so it copies references and nothing else) and its
column *values* (built later on the writer thread, where JSON encoding and
time conversion happen only for the snapshots that survive coalescing): a
tuple the SQLite writer binds as it is, or a *row* dict of them for
SQLAlchemy. Records written rarely (flows, flow runs) go straight to rows.

Times become epoch seconds, JSON-ish fields become compact JSON text, state
types their text (read as ``_value_``: ``.value`` is a Python-level property,
and the writer reads it for every state).
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
        "parent_flow_run_id": rec.parent_flow_run_id,
        "parent_task_run_id": rec.parent_task_run_id,
        "flow_version": rec.flow_version,
        "hostname": rec.hostname,
        "pid": rec.pid,
        "result": rec.result,
        "entrypoint": rec.entrypoint,
        "parameters_ref": rec.parameters_ref,
        "attempt": rec.attempt,
        "host_id": rec.host_id,
        "pid_started": rec.pid_started,
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


#: Columns of a ``task_run`` row, in the order of :func:`task_run_values`.
TASK_RUN_COLUMNS = (
    "id",
    "task_name",
    "name",
    "flow_run_id",
    "call_index",
    "map_index",
    "tags",
    "upstream_ids",
    "state_type",
    "state_name",
    "state_message",
    "run_count",
    "start_time",
    "end_time",
    "created",
    "updated",
    "cache_key",
    "result",
    "cache_expiration",
    "input_hash",
)


def task_run_values(s: TaskRunSnapshot) -> tuple[Any, ...]:
    """The ``task_run`` column values of a snapshot, in :data:`TASK_RUN_COLUMNS` order.

    A tuple, not a dict: the SQLite writer binds it as it is (the generated
    statement takes its parameters in this order; a test checks it).
    """
    end = None if s[13] is None else s[13].timestamp()
    # A finished run was last updated when it ended: the same datetime, converted once.
    updated = end if s[15] is s[13] else s[15].timestamp()
    return (
        s[0],
        s[1],
        s[2],
        s[3],
        s[4],
        s[5],
        _list_json(s[6]) if s[6] else "[]",
        _list_json(s[7]) if s[7] else "[]",
        s[8]._value_,
        s[9],
        s[10],
        s[11],
        None if s[12] is None else s[12].timestamp(),
        end,
        s[14].timestamp(),
        updated,
        s[16],
        s[17],
        None if s[18] is None else s[18].timestamp(),
        s[19],
    )


def task_run_row(s: TaskRunSnapshot) -> Row:
    """The ``task_run`` row of a snapshot from :func:`task_run_snapshot`."""
    return dict(zip(TASK_RUN_COLUMNS, task_run_values(s), strict=True))


def state_snapshot(r: StateRecord) -> StateSnapshot:
    """An immutable copy of a state record (details encoded now: it is a dict)."""
    details = None if r.details is None else dumps(r.details)
    return (r.run_id, r.kind, r.type, r.name, r.timestamp, r.message, details)


#: Columns of a ``run_state`` row, in the order of :func:`state_values`.
STATE_COLUMNS = ("run_id", "kind", "type", "name", "timestamp", "message", "details")


def state_values(s: StateSnapshot) -> tuple[Any, ...]:
    """The ``run_state`` column values of a snapshot, in :data:`STATE_COLUMNS` order."""
    return (s[0], s[1], s[2]._value_, s[3], s[4].timestamp(), s[5], s[6])


def state_row(s: StateSnapshot) -> Row:
    """The ``run_state`` row of a snapshot from :func:`state_snapshot`."""
    return dict(zip(STATE_COLUMNS, state_values(s), strict=True))


def log_snapshot(r: LogRecord) -> LogSnapshot:
    """An immutable copy of a log record."""
    return (r.flow_run_id, r.task_run_id, r.level, r.logger, r.message, r.timestamp)


#: Columns of a ``log`` row, in the order of :func:`log_values`.
LOG_COLUMNS = ("flow_run_id", "task_run_id", "level", "logger", "message", "timestamp")


def log_values(s: LogSnapshot) -> tuple[Any, ...]:
    """The ``log`` column values of a snapshot, in :data:`LOG_COLUMNS` order."""
    return (s[0], s[1], s[2], s[3], s[4], s[5].timestamp())


def log_row(s: LogSnapshot) -> Row:
    """The ``log`` row of a snapshot from :func:`log_snapshot`."""
    return dict(zip(LOG_COLUMNS, log_values(s), strict=True))


def heartbeat_row(flow_run_id: str, at: float | None = None) -> Row:
    """The parameters of a heartbeat update.

    ``at`` (the sender's clock) is not stored: the store stamps a heartbeat
    with the database's clock, so liveness is judged with one clock.
    """
    return {"b_id": flow_run_id}


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
    #: the attempts the batch's writer holds (:func:`sluice.store.fencing.fence_row`):
    #: checked, never written, before anything else (see :mod:`sluice.store.fencing`)
    fences: list[Row] = field(default_factory=list)

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
        job_variables=_loads(m["job_variables"], {}),
        attempt=m["attempt"] or 0,
        host_id=m["host_id"],
        pid_started=m["pid_started"],
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
