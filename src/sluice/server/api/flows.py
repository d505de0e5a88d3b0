"""``/api/flows``: flows by name."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from sluice.schemas import FlowRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.route_table import RouteTable

router = RouteTable(prefix="/flows", tags=["flows"])


@router.get("", response_model=list[FlowRecord])
def list_flows(
    backend: BackendDep, limit: Annotated[int, Query(ge=1, le=1000)] = 200
) -> list[FlowRecord]:
    """Flows, most recently created first."""
    return backend.list_flows(limit)


@router.get("/{name}", response_model=FlowRecord)
def read_flow(name: str, backend: BackendDep) -> FlowRecord:
    """A flow by name (``my_flow`` and ``my-flow`` both match)."""
    return backend.read_flow(name)
