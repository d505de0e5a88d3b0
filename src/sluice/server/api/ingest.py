"""``POST /api/ingest``: a client's batch of records, durable when acknowledged."""

from __future__ import annotations

from fastapi import APIRouter

from sluice.server import actions
from sluice.server.api.deps import BackendDep
from sluice.server.wire import Accepted, IngestBatch

router = APIRouter(tags=["ingest"])


@router.post("/ingest", status_code=202, response_model=Accepted)
def ingest(batch: IngestBatch, backend: BackendDep) -> Accepted:
    """Write flows, runs with their states, logs and heartbeats; 202 once durable."""
    return Accepted(accepted=actions.ingest(backend, batch))
