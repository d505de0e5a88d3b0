"""Reads for the web UI: aggregates and pages shaped for the browser.

The UI must stay fast with 100,000 flow runs and with a flow run of 10,000
task runs, so these queries select only the columns a page shows, page
everything, and aggregate mapped task runs in the database process rather
than sending every row to the browser. Results are JSON-ready dicts (times as
epoch seconds) because they are views for one consumer, not records of the
data model. Every function takes an open connection; the caller owns the
transaction.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Connection,
    Integer,
    and_,
    bindparam,
    cast,
    func,
    literal,
    or_,
    select,
)

from sluice.states import StateType
from sluice.store.schema import flow, flow_run, log, run_state, task_run, worker

View = dict[str, Any]

_FAILED = (StateType.FAILED.value, StateType.CRASHED.value)
_WAITING = (StateType.SCHEDULED.value, StateType.PENDING.value)


# -- flow runs ------------------------------------------------------------------------

_RUN_COLUMNS = (
    flow_run.c.id,
    flow_run.c.name,
    flow_run.c.flow_name,
    flow_run.c.state_type,
    flow_run.c.state_name,
    flow_run.c.state_message,
    flow_run.c.tags,
    flow_run.c.run_count,
    flow_run.c.start_time,
    flow_run.c.end_time,
    flow_run.c.created,
    flow_run.c.parent_flow_run_id,
)


def run_summary(row: Any) -> View:
    """The compact view of a ``flow_run`` row that lists show."""
    tags = row["tags"]
    return {
        "id": row["id"],
        "name": row["name"],
        "flow_name": row["flow_name"],
        "state_type": row["state_type"],
        "state_name": row["state_name"],
        "state_message": row["state_message"],
        "tags": json.loads(tags) if tags and tags != "[]" else [],
        "run_count": row["run_count"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "created": row["created"],
        "parent_flow_run_id": row["parent_flow_run_id"],
    }


def _runs(
    conn: Connection, *conditions: ColumnElement[bool], limit: int, oldest: bool = False
) -> list[View]:
    order = (flow_run.c.created, flow_run.c.id) if oldest else (
        flow_run.c.created.desc(), flow_run.c.id.desc()
    )  # fmt: skip
    stmt = select(*_RUN_COLUMNS).where(*conditions).order_by(*order).limit(limit)
    return [run_summary(r) for r in conn.execute(stmt).mappings()]


def child_runs(conn: Connection, flow_run_id: str, limit: int = 100) -> list[View]:
    """Subflow runs started by ``flow_run_id``, oldest first."""
    return _runs(conn, flow_run.c.parent_flow_run_id == flow_run_id, limit=limit, oldest=True)


def run_brief(conn: Connection, flow_run_id: str) -> View | None:
    """Id, name, flow and state of one flow run (for links), or None."""
    found = _runs(conn, flow_run.c.id == flow_run_id, limit=1)
    return found[0] if found else None


def _bucket_index(conn: Connection, value: ColumnElement[Any], since: float, width: float) -> Any:
    position = (value - since) / width
    if conn.dialect.name == "postgresql":
        return func.floor(position)
    # SQLite's CAST truncates toward zero, which is floor for the non-negative
    # offsets selected here (SQLite may lack floor()).
    return cast(position, Integer)


def _bucket_totals(conn: Connection, since: float, width: float, count: int) -> list[int]:
    """Runs created in each bucket: counted on the ``(created, id)`` index alone."""
    start: BindParameter[float] = bindparam("start")
    end: BindParameter[float] = bindparam("end")
    stmt = (
        select(func.count())
        .select_from(flow_run)
        .where(flow_run.c.created >= start, flow_run.c.created < end)
    )
    return [
        int(
            conn.execute(
                stmt, {"start": since + i * width, "end": since + (i + 1) * width}
            ).scalar_one()
        )
        for i in range(count)
    ]


def dashboard(
    conn: Connection, since: float, until: float, width: float, now: float, late_after: float
) -> View:
    """Runs per time bucket and state, recent failures and late runs.

    Runs are placed by creation time. Counting states means reading rows, so
    only the runs *not* Completed are read (through the state index), and a
    bucket's Completed count is its total (from the creation-time index,
    without reading rows) minus those: with 100,000 runs, most of them
    Completed, this reads a small fraction of the table.

    Args:
        since, until: the window (epoch seconds), a whole number of ``width``.
        width: bucket width in seconds.
        now: the current time (late runs are waiting since before ``now - late_after``).
    """
    count = round((until - since) / width)
    in_window = and_(flow_run.c.created >= since, flow_run.c.created < until)
    bucket = _bucket_index(conn, flow_run.c.created, since, width).label("bucket")
    others = [t.value for t in StateType if t is not StateType.COMPLETED]
    stmt = (
        select(bucket, flow_run.c.state_type, func.count().label("n"))
        .where(in_window, flow_run.c.state_type.in_(others))
        .group_by(bucket, flow_run.c.state_type)
    )
    buckets: list[dict[str, int]] = [{} for _ in range(count)]
    totals: dict[str, int] = {}
    seen = [0] * count
    for index, state, n in conn.execute(stmt):
        i = min(max(int(index), 0), count - 1)
        buckets[i][state] = buckets[i].get(state, 0) + n
        totals[state] = totals.get(state, 0) + n
        seen[i] += n
    for i, total in enumerate(_bucket_totals(conn, since, width, count)):
        completed = total - seen[i]
        if completed > 0:
            buckets[i][StateType.COMPLETED.value] = completed
            totals[StateType.COMPLETED.value] = totals.get(StateType.COMPLETED.value, 0) + completed
    # A deployment's run is late after its scheduled time (or once the scheduler
    # names it Late); a run without one, after its creation.
    waited_since = func.coalesce(flow_run.c.scheduled_start_time, flow_run.c.created)
    late_condition = and_(
        flow_run.c.state_type.in_(_WAITING),
        or_(flow_run.c.state_name == "Late", waited_since < now - late_after),
    )
    late_count = conn.execute(
        select(func.count()).select_from(flow_run).where(late_condition)
    ).scalar_one()
    running = conn.execute(
        select(func.count())
        .select_from(flow_run)
        .where(flow_run.c.state_type == StateType.RUNNING.value)
    ).scalar_one()
    return {
        "since": since,
        "until": until,
        "width": width,
        "buckets": buckets,
        "totals": totals,
        "failures": _runs(conn, in_window, flow_run.c.state_type.in_(_FAILED), limit=10),
        "late": _runs(conn, late_condition, limit=10, oldest=True),
        "late_count": int(late_count),
        "running": int(running),
    }


def flows_with_runs(conn: Connection, offset: int, limit: int, per_flow: int) -> list[View]:
    """Flows (newest first, paged) each with its ``per_flow`` most recent runs."""
    stmt = select(flow).order_by(flow.c.created.desc(), flow.c.name).offset(offset).limit(limit)
    views = []
    for row in conn.execute(stmt).mappings():
        views.append(
            {
                "name": row["name"],
                "description": row["description"],
                "version": row["version"],
                "created": row["created"],
                "recent_runs": _runs(conn, flow_run.c.flow_name == row["name"], limit=per_flow),
            }
        )
    return views


# -- task runs of one flow run --------------------------------------------------------


def task_runs_version(conn: Connection, flow_run_id: str) -> str:
    """A token that changes whenever any task run of the flow run is added or changes.

    Count, latest and sum of ``updated``: a state change always moves that
    run's ``updated``, which moves the sum even when the latest stays put.
    """
    stmt = select(func.count(), func.max(task_run.c.updated), func.sum(task_run.c.updated)).where(
        task_run.c.flow_run_id == flow_run_id
    )
    count, latest, total = conn.execute(stmt).one()
    return f"{count}:{latest!r}:{total!r}"


def task_state_counts(conn: Connection, flow_run_id: str) -> dict[str, int]:
    """How many task runs of the flow run are in each state type."""
    stmt = (
        select(task_run.c.state_type, func.count())
        .where(task_run.c.flow_run_id == flow_run_id)
        .group_by(task_run.c.state_type)
    )
    return {state: int(n) for state, n in conn.execute(stmt)}


_TASK_COLUMNS = (
    task_run.c.id,
    task_run.c.name,
    task_run.c.task_name,
    task_run.c.call_index,
    task_run.c.map_index,
    task_run.c.state_type,
    task_run.c.state_name,
    task_run.c.run_count,
    task_run.c.start_time,
    task_run.c.end_time,
    task_run.c.cache_key,
)


def _task_view(row: Any) -> View:
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 - RowMapping has no items()


def parse_group(key: str) -> tuple[str, int] | None:
    """``(task_name, call_index)`` of a mapped group key ``m:<call_index>:<name>``, or None."""
    kind, _, rest = key.partition(":")
    index, _, name = rest.partition(":")
    if kind != "m" or not index.isdigit() or not name or len(index) > 18:
        return None
    return name, int(index)


def task_runs_page(
    conn: Connection,
    flow_run_id: str,
    *,
    states: Sequence[str] = (),
    group: tuple[str, int] | None = None,
    offset: int = 0,
    limit: int = 50,
) -> View:
    """One page of the flow run's task runs (creation order) and how many match."""
    conditions: list[ColumnElement[bool]] = [task_run.c.flow_run_id == flow_run_id]
    if states:
        conditions.append(task_run.c.state_type.in_(sorted(set(states))))
    if group is not None:
        conditions += [
            task_run.c.task_name == group[0],
            task_run.c.call_index == group[1],
            task_run.c.map_index >= 0,
        ]
    stmt = (
        select(*_TASK_COLUMNS)
        .where(*conditions)
        .order_by(task_run.c.created, task_run.c.id)
        .offset(offset)
        .limit(limit)
    )
    total = conn.execute(select(func.count()).select_from(task_run).where(*conditions))
    return {
        "task_runs": [_task_view(r) for r in conn.execute(stmt).mappings()],
        "total": int(total.scalar_one()),
        "offset": offset,
        "limit": limit,
    }


# -- task run detail ----------------------------------------------------------------


def task_run_briefs(conn: Connection, ids: Sequence[str]) -> list[View]:
    """Id, name and state of the given task runs, in the order given (unknown ids skipped)."""
    if not ids:
        return []
    stmt = select(
        task_run.c.id, task_run.c.name, task_run.c.state_type, task_run.c.state_name
    ).where(task_run.c.id.in_(list(ids)))
    found = {r["id"]: _task_view(r) for r in conn.execute(stmt).mappings()}
    return [found[i] for i in dict.fromkeys(ids) if i in found]


def states_of(conn: Connection, run_id: str) -> list[View]:
    """The run's state history, oldest first, details decoded."""
    stmt = select(run_state).where(run_state.c.run_id == run_id).order_by(run_state.c.id)
    return [
        {
            "type": r["type"],
            "name": r["name"],
            "timestamp": r["timestamp"],
            "message": r["message"],
            "details": json.loads(r["details"]) if r["details"] else None,
        }
        for r in conn.execute(stmt).mappings()
    ]


# -- logs -----------------------------------------------------------------------------


def search_logs(
    conn: Connection,
    flow_run_id: str,
    *,
    task_run_id: str | None = None,
    min_level: int = 0,
    text: str = "",
    after_id: int = 0,
    limit: int = 200,
) -> View:
    """A page of the run's log lines after ``after_id`` (oldest first), optionally filtered.

    ``text`` matches case-insensitively anywhere in the message. Paging is by
    line id, so a page never shifts under lines appended meanwhile and the
    browser can ask for "what came after the last line I have".
    """
    conditions: list[ColumnElement[bool]] = [log.c.flow_run_id == flow_run_id]
    if task_run_id:
        conditions.append(log.c.task_run_id == task_run_id)
    if min_level > 0:
        conditions.append(log.c.level >= min_level)
    if text:
        conditions.append(log.c.message.icontains(text, autoescape=True))
    if after_id > 0:
        conditions.append(log.c.id > after_id)
    stmt = (
        select(
            log.c.id, log.c.task_run_id, log.c.level, log.c.logger, log.c.message, log.c.timestamp
        )
        .where(*conditions)
        .order_by(log.c.id)
        .limit(limit + 1)
    )
    lines = [_task_view(r) for r in conn.execute(stmt).mappings()]
    more = len(lines) > limit
    del lines[limit:]
    last = lines[-1]["id"] if lines else after_id
    return {"logs": lines, "more": more, "last_id": last}


def latest_log_id(conn: Connection, flow_run_id: str) -> int:
    """The id of the run's newest log line (0 when it has none)."""
    stmt = select(func.coalesce(func.max(log.c.id), literal(0))).where(
        log.c.flow_run_id == flow_run_id
    )
    return int(conn.execute(stmt).scalar_one())


__all__ = [
    "child_runs",
    "dashboard",
    "flows_with_runs",
    "latest_log_id",
    "parse_group",
    "run_brief",
    "run_summary",
    "search_logs",
    "states_of",
    "task_run_briefs",
    "task_runs_page",
    "task_runs_version",
    "task_state_counts",
]


# -- deployments and work pools -------------------------------------------------------


def _deployment_run_view(row: Any) -> View:
    view = run_summary(row)
    view["scheduled_start_time"] = row["scheduled_start_time"]
    return view


def deployment_runs(
    conn: Connection, deployment_id: str, *, upcoming: bool, limit: int
) -> list[View]:
    """A deployment's runs: its Scheduled ones, Late included (soonest first), or
    the others (newest first)."""
    columns = (*_RUN_COLUMNS, flow_run.c.scheduled_start_time)
    when = func.coalesce(flow_run.c.scheduled_start_time, flow_run.c.created)
    if upcoming:
        condition = flow_run.c.state_type == StateType.SCHEDULED.value
        order: tuple[Any, ...] = (when, flow_run.c.id)
    else:
        condition = flow_run.c.state_type != StateType.SCHEDULED.value
        order = (flow_run.c.created.desc(), flow_run.c.id.desc())
    stmt = (
        select(*columns)
        .where(flow_run.c.deployment_id == deployment_id, condition)
        .order_by(*order)
        .limit(limit)
    )
    return [_deployment_run_view(r) for r in conn.execute(stmt).mappings()]


def queue_depths(conn: Connection, pool_name: str, now: float) -> dict[str, dict[str, int]]:
    """Per queue of a pool, its Scheduled runs (Late included): ``due`` (their time has
    come: they wait for a worker) and ``later`` (they wait for their time)."""
    when = func.coalesce(flow_run.c.scheduled_start_time, flow_run.c.created)
    due = (when <= now).label("due")
    stmt = (
        select(flow_run.c.work_queue_name, due, func.count())
        .where(
            flow_run.c.work_pool_name == pool_name,
            flow_run.c.state_type == StateType.SCHEDULED.value,
        )
        .group_by(flow_run.c.work_queue_name, due)
    )
    depths: dict[str, dict[str, int]] = {}
    for name, is_due, n in conn.execute(stmt):
        counts = depths.setdefault(str(name), {"due": 0, "later": 0})
        counts["due" if is_due else "later"] += int(n)
    return depths


def online_workers(conn: Connection, heard_since: float) -> list[View]:
    """Workers saying ONLINE whose last heartbeat is at or after ``heard_since``."""
    stmt = (
        select(worker.c.pool_name, worker.c.name, worker.c.hostname)
        .where(worker.c.status == "ONLINE", worker.c.last_heartbeat >= heard_since)
        .order_by(worker.c.pool_name, worker.c.name)
        .limit(100)
    )
    return [dict(r) for r in conn.execute(stmt).mappings()]
