"""Rows of the deployment, work pool, work queue and worker tables, and back.

Same conventions as :mod:`sluice.store.rows`: times are epoch seconds, JSON-ish
fields compact JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sluice.schemas import DeploymentRecord, WorkerRecord, WorkPoolRecord, WorkQueueRecord
from sluice.store.rows import Row, dt, dumps, ts


def _required(value: float) -> Any:
    moment = dt(value)
    assert moment is not None
    return moment


def _json(text: str | None, empty: Any) -> Any:
    return empty if text is None else json.loads(text)


def deployment_row(rec: DeploymentRecord) -> Row:
    """The ``deployment`` row of a deployment record."""
    return {
        "id": rec.id,
        "name": rec.name,
        "flow_name": rec.flow_name,
        "entrypoint": rec.entrypoint,
        "working_dir": rec.working_dir,
        "parameters": dumps(rec.parameters),
        "parameter_schema": None if rec.parameter_schema is None else dumps(rec.parameter_schema),
        "tags": dumps(list(rec.tags)),
        "version": rec.version,
        "description": rec.description,
        "work_pool_name": rec.work_pool_name,
        "work_queue_name": rec.work_queue_name,
        "schedules": dumps(list(rec.schedules)),
        "paused": bool(rec.paused),
        "concurrency_limit": rec.concurrency_limit,
        "max_active_runs": rec.max_active_runs,
        "catchup": bool(rec.catchup),
        "created": rec.created.timestamp(),
        "updated": rec.updated.timestamp(),
        "planned_until": ts(rec.planned_until),
    }


def deployment_from_row(m: Mapping[Any, Any]) -> DeploymentRecord:
    """A deployment record from a ``deployment`` row."""
    return DeploymentRecord(
        id=m["id"],
        name=m["name"],
        flow_name=m["flow_name"],
        entrypoint=m["entrypoint"],
        working_dir=m["working_dir"],
        parameters=_json(m["parameters"], {}),
        parameter_schema=_json(m["parameter_schema"], None),
        tags=_json(m["tags"], []),
        version=m["version"],
        description=m["description"],
        work_pool_name=m["work_pool_name"],
        work_queue_name=m["work_queue_name"],
        schedules=_json(m["schedules"], []),
        paused=bool(m["paused"]),
        concurrency_limit=m["concurrency_limit"],
        max_active_runs=m["max_active_runs"],
        catchup=bool(m["catchup"]),
        created=_required(m["created"]),
        updated=_required(m["updated"]),
        planned_until=dt(m["planned_until"]),
    )


def work_pool_row(rec: WorkPoolRecord) -> Row:
    """The ``work_pool`` row of a work pool record."""
    return {
        "id": rec.id,
        "name": rec.name,
        "type": rec.type,
        "description": rec.description,
        "concurrency_limit": rec.concurrency_limit,
        "paused": bool(rec.paused),
        "created": rec.created.timestamp(),
        "updated": rec.updated.timestamp(),
    }


def work_pool_from_row(m: Mapping[Any, Any]) -> WorkPoolRecord:
    """A work pool record from a ``work_pool`` row."""
    return WorkPoolRecord(
        id=m["id"],
        name=m["name"],
        type=m["type"],
        description=m["description"],
        concurrency_limit=m["concurrency_limit"],
        paused=bool(m["paused"]),
        created=_required(m["created"]),
        updated=_required(m["updated"]),
    )


def work_queue_row(rec: WorkQueueRecord) -> Row:
    """The ``work_queue`` row of a work queue record."""
    return {
        "id": rec.id,
        "pool_name": rec.pool_name,
        "name": rec.name,
        "priority": rec.priority,
        "description": rec.description,
        "concurrency_limit": rec.concurrency_limit,
        "paused": bool(rec.paused),
        "created": rec.created.timestamp(),
        "updated": rec.updated.timestamp(),
    }


def work_queue_from_row(m: Mapping[Any, Any]) -> WorkQueueRecord:
    """A work queue record from a ``work_queue`` row."""
    return WorkQueueRecord(
        id=m["id"],
        pool_name=m["pool_name"],
        name=m["name"],
        priority=m["priority"],
        description=m["description"],
        concurrency_limit=m["concurrency_limit"],
        paused=bool(m["paused"]),
        created=_required(m["created"]),
        updated=_required(m["updated"]),
    )


def worker_from_row(m: Mapping[Any, Any]) -> WorkerRecord:
    """A worker record from a ``worker`` row."""
    return WorkerRecord(
        pool_name=m["pool_name"],
        name=m["name"],
        status=m["status"],
        last_heartbeat=_required(m["last_heartbeat"]),
        hostname=m["hostname"],
        pid=m["pid"],
        created=_required(m["created"]),
    )
