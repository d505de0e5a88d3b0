"""RouteTable: routes declared at import, built once on the app."""

from __future__ import annotations

from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from sluice.server.api.route_table import RouteTable
from sluice.settings import Settings


class TaggedRoute(APIRoute):
    """A route class the table must build its routes with."""


def mark(request: Request) -> None:
    request.state.marks = [*getattr(request.state, "marks", []), "table"]


def test_routes_get_the_prefixes_tags_dependencies_and_class_of_their_table() -> None:
    table = RouteTable(
        prefix="/things", tags=["things"], dependencies=[Depends(mark)], route_class=TaggedRoute
    )

    @table.get("/{thing_id}", tags=["read"])
    def read_thing(thing_id: int, request: Request) -> dict[str, object]:
        return {"id": thing_id, "marks": request.state.marks}

    @table.delete("/{thing_id}", status_code=204)
    def delete_thing(thing_id: int) -> None:
        return None

    assert table.paths("/api") == {"/api/things/{thing_id}"}
    app = FastAPI()
    table.add_to(app.router, "/api")
    routes = [r for r in app.routes if isinstance(r, TaggedRoute)]
    assert [(r.path, sorted(r.methods), r.tags) for r in routes] == [
        ("/api/things/{thing_id}", ["GET"], ["things", "read"]),
        ("/api/things/{thing_id}", ["DELETE"], ["things"]),
    ]
    with TestClient(app) as client:
        assert client.get("/api/things/7").json() == {"id": 7, "marks": ["table"]}
        assert client.get("/api/things/x").status_code == 422
        assert client.delete("/api/things/7").status_code == 204


def test_the_server_app_includes_no_router_whose_routes_it_would_build_again(
    tmp_path: Path,
) -> None:
    from sluice.server.app import create_app

    app = create_app(Settings(home=tmp_path))
    kinds = {type(route).__name__ for route in app.routes}
    # Plain routes and the static-files mount only: an included APIRouter
    # would rebuild every route it holds (start-up time, issue 4).
    assert kinds <= {"APIRoute", "StrictJSONRoute", "RawBodyRoute", "Route", "Mount"}, kinds
    paths = {getattr(route, "path", "") for route in app.routes}
    assert {"/api/health", "/api/ingest", "/api/flow_runs", "/"} <= paths
