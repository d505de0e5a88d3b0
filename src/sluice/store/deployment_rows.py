"""Rows of the deployment, work pool, work queue and worker tables, and back.

Derived from the records' declarations, as for the engine's records (see
:mod:`sluice.store.rows`): times are epoch seconds, JSON-ish fields compact
JSON text. Only the SQLAlchemy side (deployment operations, claims, reads)
imports this module, so its conversions are compiled here at once.
"""

from __future__ import annotations

from sluice.schemas import DeploymentRecord, WorkerRecord, WorkPoolRecord, WorkQueueRecord
from sluice.store.rows import codec

DEPLOYMENT = codec(DeploymentRecord)
WORK_POOL = codec(WorkPoolRecord)
WORK_QUEUE = codec(WorkQueueRecord)
WORKER = codec(WorkerRecord)

# ``<table>_row(record)``: the row to INSERT; ``<table>_from_row(mapping)``: the record.
deployment_row = DEPLOYMENT.row
deployment_from_row = DEPLOYMENT.from_row
work_pool_row = WORK_POOL.row
work_pool_from_row = WORK_POOL.from_row
work_queue_row = WORK_QUEUE.row
work_queue_from_row = WORK_QUEUE.from_row
#: a worker's row lacks the id the store gives it
worker_row = WORKER.row
worker_from_row = WORKER.from_row

__all__ = [
    "DEPLOYMENT",
    "WORKER",
    "WORK_POOL",
    "WORK_QUEUE",
    "deployment_from_row",
    "deployment_row",
    "work_pool_from_row",
    "work_pool_row",
    "work_queue_from_row",
    "work_queue_row",
    "worker_from_row",
    "worker_row",
]
