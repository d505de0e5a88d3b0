"""Page routes and static files of the web UI.

Each page is a Jinja2 shell (layout, navigation, empty containers) whose
script fetches the data; the template only ever sees the page name and the
id from the URL, autoescaped. Navigation lists only pages whose API exists
on this server, so pages for optional APIs (deployments, work pools) join the
menu by adding a :class:`Page` with ``requires`` set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse

if TYPE_CHECKING:
    from fastapi import FastAPI
    from jinja2 import Environment

HERE = Path(__file__).resolve().parent
STATIC_PATH = "/ui-static"


@dataclass(frozen=True)
class Page:
    """One UI page: its URL, menu label, template, and the API path it needs (if optional)."""

    path: str
    name: str
    label: str
    in_nav: bool = True
    requires: str | None = None


PAGES = (
    Page("/", "dashboard", "Dashboard"),
    Page("/runs", "runs", "Flow runs"),
    Page("/runs/{run_id}", "flow_run", "Flow run", in_nav=False),
    Page("/task-runs/{run_id}", "task_run", "Task run", in_nav=False),
    Page("/flows", "flows", "Flows"),
    Page("/deployments", "deployments", "Deployments", requires="/api/deployments"),
    Page(
        "/deployments/{flow_name}/{name}",
        "deployment",
        "Deployment",
        in_nav=False,
        requires="/api/deployments",
    ),
    Page("/work-pools", "work_pools", "Work pools", requires="/api/work_pools"),
)


@lru_cache(maxsize=1)
def _environment() -> Environment:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    return Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True),
        auto_reload=False,
    )


def _page_handler(page: Page, nav: list[Page], version: str):  # type: ignore[no-untyped-def]
    template_name = f"{page.name}.html"

    def render(
        request: Request, run_id: str = "", flow_name: str = "", name: str = ""
    ) -> HTMLResponse:
        # A deployment page's id is FLOW/NAME with each part URL-encoded again,
        # ready for the script to put into API paths.
        page_id = f"{quote(flow_name, safe='')}/{quote(name, safe='')}" if flow_name else run_id
        html = (
            _environment()
            .get_template(template_name)
            .render(page=page, nav=nav, run_id=page_id, static=STATIC_PATH, version=version)
        )
        # The shell is the same for everyone and holds no data; scripts refresh it.
        return HTMLResponse(html, headers={"Cache-Control": "no-cache"})

    return render


def route_paths(app: FastAPI) -> set[str]:
    """The paths of every route of ``app``, those of included routers too.

    FastAPI up to 0.11x copies an included router's routes into the app;
    later versions keep the router as one entry whose routes it lists
    through ``effective_route_contexts``.
    """
    paths: set[str] = set()
    for route in app.routes:
        path = getattr(route, "path", None)
        if path is not None:
            paths.add(path)
        contexts = getattr(route, "effective_route_contexts", None)
        if contexts is not None:
            paths.update(str(c.path) for c in contexts())
    return paths


def mount_ui(app: FastAPI, version: str, pages: Sequence[Page] = PAGES) -> None:
    """Add the UI pages and ``/ui-static`` to ``app`` (after its API routers).

    A page whose ``requires`` path is not among the app's routes is left out,
    menu included.
    """
    from fastapi.staticfiles import StaticFiles

    api_paths = route_paths(app)
    available = [p for p in pages if p.requires is None or p.requires in api_paths]
    nav = [p for p in available if p.in_nav]
    for page in available:
        # On the app's own router: an included router's routes are built twice.
        app.router.add_api_route(
            page.path,
            _page_handler(page, nav, version),
            methods=["GET"],
            response_class=HTMLResponse,
            include_in_schema=False,
        )
    app.mount(STATIC_PATH, StaticFiles(directory=HERE / "static"), name="ui-static")
