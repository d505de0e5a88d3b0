"""``/api/runs/{run_id}/states``: the state history of a flow or task run."""

from __future__ import annotations

from sluice.schemas import StateRecord
from sluice.server.api.deps import BackendDep
from sluice.server.api.route_table import RouteTable

router = RouteTable(prefix="/runs", tags=["states"])


@router.get("/{run_id}/states", response_model=list[StateRecord])
def read_states(run_id: str, backend: BackendDep) -> list[StateRecord]:
    """The run's states, oldest first (empty for an unknown id)."""
    return backend.read_states(run_id)
