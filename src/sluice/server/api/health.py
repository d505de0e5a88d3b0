"""``GET /api/health``: is the server up (no authentication, no database access)."""

from __future__ import annotations

from fastapi import Request

from sluice.api_schemas import Health
from sluice.server.api.route_table import RouteTable

router = RouteTable(tags=["health"])


@router.get("/health", response_model=Health)
def health(request: Request) -> Health:
    """The server answers; with its Sluice version."""
    return Health(status="ok", version=request.app.version)
