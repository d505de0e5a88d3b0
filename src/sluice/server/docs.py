"""``/docs``: the API's Swagger page, served without a CDN, and API-key auth in the schema.

Swagger UI's script and stylesheet come from the ``fastapi-offline`` package
(a dependency of the ``server`` extra), served by this server: clusters
often have no route to a CDN, and the page must work there too. Without the
package the page falls back to FastAPI's CDN links.

With an API key set, the OpenAPI document declares HTTP bearer auth on every
operation but the open ones (the health check), so Swagger's Authorize button
takes the key and "Try it out" sends it. The document itself is served
without the key: it describes the API and holds no data, and the browser
cannot send a key before it has loaded the page that asks for one.
"""

from __future__ import annotations

from collections.abc import Iterable
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse

DOCS_PATH = "/docs"
#: where Swagger UI's own files are served from
ASSETS_PATH = f"{DOCS_PATH}/assets"
#: the security scheme's name in the OpenAPI document
SCHEME = "apiKey"


def swagger_assets() -> Path | None:
    """The folder holding Swagger UI's script and stylesheet, if installed."""
    spec = find_spec("fastapi_offline")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Serve the Swagger page for ``openapi_url`` at ``/docs``."""
    assets = swagger_assets()
    links: dict[str, Any] = {}
    if assets is not None:
        from fastapi.staticfiles import StaticFiles

        app.mount(ASSETS_PATH, StaticFiles(directory=assets), name="docs-assets")
        links = {
            "swagger_js_url": f"{ASSETS_PATH}/swagger-ui-bundle.js",
            "swagger_css_url": f"{ASSETS_PATH}/swagger-ui.css",
            "swagger_favicon_url": f"{ASSETS_PATH}/favicon.png",
        }

    async def swagger_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} API",
            # The key typed into Authorize survives reloading the page.
            swagger_ui_parameters={"persistAuthorization": True},
            **links,
        )

    app.add_api_route(DOCS_PATH, swagger_page, include_in_schema=False)


def declare_bearer_auth(app: FastAPI, open_paths: Iterable[str]) -> None:
    """Make ``app``'s OpenAPI document require ``Authorization: Bearer <key>`` on every
    operation except those under ``open_paths``."""
    build = app.openapi
    open_set = frozenset(open_paths)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        schema.setdefault("components", {})["securitySchemes"] = {
            SCHEME: {
                "type": "http",
                "scheme": "bearer",
                "description": "The server's API key (SLUICE_API_KEY)",
            }
        }
        schema["security"] = [{SCHEME: []}]
        for path, operations in schema.get("paths", {}).items():
            if path in open_set:
                for operation in operations.values():
                    operation["security"] = []
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
