"""``create_app(settings)``: the Sluice API server as a FastAPI application.

The app owns one :class:`~sluice.backend.local.LocalBackend` over the
configured database (opened at startup, flushed and closed at shutdown) and
the background services. Its routes: one per operation, made from the table
of operations (:mod:`sluice.server.api.operations`), ingest, health, and the
web UI's views, which only parse, call the backend and render.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from sluice.server.api import health, ingest, ui_actions, ui_data
from sluice.server.api.operations import add_operation_routes
from sluice.server.docs import declare_bearer_auth, install_docs
from sluice.server.errors import install_error_handlers
from sluice.server.middleware import ApiKeyAuth, BodyLimit, CrossSiteGuard
from sluice.server.served_hosts import served_hosts
from sluice.server.ui import mount_ui
from sluice.settings import Settings, load_settings

API_PREFIX = "/api"
HEALTH_PATH = f"{API_PREFIX}/health"
OPENAPI_PATH = f"{API_PREFIX}/openapi.json"


def _version() -> str:
    from sluice.distribution import installed_version

    return installed_version()


def create_app(
    settings: Settings | None = None,
    *,
    crash_interval: float | None = None,
    host: str = "127.0.0.1",
) -> FastAPI:
    """The API server over ``settings``' database (``None``: :func:`load_settings`).

    Args:
        settings: where the database is, the API key, heartbeat timeouts, the
            extra host names it is reached by (``server.allowed_hosts``).
        crash_interval: seconds between crash detection passes (default 5).
        host: the address the server listens on: requests for other hosts are
            refused (see :mod:`sluice.server.served_hosts`).

    Raises:
        ConfigurationError: ``server.allowed_hosts`` holds an entry that is not a host.
    """
    import socket

    resolved = settings or load_settings()
    hosts = served_hosts(host, resolved.server.allowed_hosts, socket.gethostname())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        import asyncio

        from sluice.backend.local import LocalBackend
        from sluice.server.ingest_writer import open_ingest_writer
        from sluice.server.services.crash_detector import (
            CRASH_DETECTION_INTERVAL,
            crash_detector,
        )
        from sluice.server.services.log_retention import log_retention
        from sluice.server.services.scheduler import scheduler_service

        backend = await asyncio.to_thread(LocalBackend, resolved)
        app.state.backend = backend
        app.state.ingest_writer = await asyncio.to_thread(open_ingest_writer, backend)
        services = [
            crash_detector(backend, resolved, crash_interval or CRASH_DETECTION_INTERVAL),
            scheduler_service(backend, resolved),
        ]
        retention = log_retention(backend, resolved)
        if retention is not None:
            services.append(retention)
        app.state.services = services
        for service in services:
            service.start()
        try:
            yield
        finally:
            for service in services:
                await service.stop()
            # Everything acknowledged is already durable; this flushes stragglers
            # (set_state writes) and closes the database connections.
            try:
                await asyncio.to_thread(app.state.ingest_writer.close)
            finally:
                await asyncio.to_thread(backend.close)

    app = FastAPI(
        title="Sluice",
        version=_version(),
        description="The Sluice API: flows, runs, states and logs. See docs/api.md.",
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    # Built once, on the app itself (see sluice.server.api.route_table).
    for module in (health, ingest):
        module.router.add_to(app.router, API_PREFIX)
    add_operation_routes(app.router, API_PREFIX)
    for module in (ui_data, ui_actions):
        module.router.add_to(app.router, API_PREFIX)
    install_docs(app, OPENAPI_PATH)
    # The web UI's pages come after the API: its menu shows pages whose API exists.
    mount_ui(app, app.version)
    install_error_handlers(app)
    # The middleware added last runs first: unauthenticated requests are
    # refused before any body is read.
    app.add_middleware(BodyLimit)
    if resolved.api_key:
        # The schema holds no data, and /docs must load it to ask for the key.
        open_paths = frozenset({HEALTH_PATH, OPENAPI_PATH})
        app.add_middleware(ApiKeyAuth, api_key=resolved.api_key, open_paths=open_paths)
        declare_bearer_auth(app, open_paths)
    # Outermost: a request for another host, or from another site's page, is
    # refused before anything else looks at it.
    app.add_middleware(CrossSiteGuard, hosts=hosts)
    return app
