"""Rows of the deployment, work pool, work queue and worker tables, and back.

Derived from the records' declarations, as for the engine's records (see
:mod:`sluice.store.rows`): times are epoch seconds, JSON-ish fields compact
JSON text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sluice.schemas import DeploymentRecord, WorkerRecord, WorkPoolRecord, WorkQueueRecord
from sluice.store.rows import Row, codec

DEPLOYMENT = codec(DeploymentRecord)
WORK_POOL = codec(WorkPoolRecord)
WORK_QUEUE = codec(WorkQueueRecord)
WORKER = codec(WorkerRecord)


def deployment_row(rec: DeploymentRecord) -> Row:
    """The ``deployment`` row of a deployment record."""
    return DEPLOYMENT.row(rec)


def deployment_from_row(m: Mapping[Any, Any]) -> DeploymentRecord:
    """A deployment record from a ``deployment`` row."""
    return DEPLOYMENT.from_row(m)


def work_pool_row(rec: WorkPoolRecord) -> Row:
    """The ``work_pool`` row of a work pool record."""
    return WORK_POOL.row(rec)


def work_pool_from_row(m: Mapping[Any, Any]) -> WorkPoolRecord:
    """A work pool record from a ``work_pool`` row."""
    return WORK_POOL.from_row(m)


def work_queue_row(rec: WorkQueueRecord) -> Row:
    """The ``work_queue`` row of a work queue record."""
    return WORK_QUEUE.row(rec)


def work_queue_from_row(m: Mapping[Any, Any]) -> WorkQueueRecord:
    """A work queue record from a ``work_queue`` row."""
    return WORK_QUEUE.from_row(m)


def worker_row(rec: WorkerRecord) -> Row:
    """The ``worker`` row of a worker record (without the id the store gives it)."""
    return WORKER.row(rec)


def worker_from_row(m: Mapping[Any, Any]) -> WorkerRecord:
    """A worker record from a ``worker`` row."""
    return WORKER.from_row(m)
