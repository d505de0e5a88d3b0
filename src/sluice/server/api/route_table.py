"""RouteTable: an API module's routes, recorded at import, built once on the app.

FastAPI builds a route (its dependency tree, a pydantic ``TypeAdapter`` per
parameter and response model) when it is declared on an ``APIRouter``, and
builds it again when that router is included in another. With a hundred
routes that is most of the server's start-up time, paid twice. A module
declares its routes on a :class:`RouteTable` with the same decorators
(``@router.get(...)``); :func:`sluice.server.app.create_app` then adds them to
the app's router with :meth:`RouteTable.add_to`, and each is built once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.params import Depends
from fastapi.routing import APIRoute

from sluice.server.json_bodies import StrictJSONRoute

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _Route:
    path: str
    endpoint: Callable[..., Any]
    methods: list[str]
    options: dict[str, Any]


@dataclass
class RouteTable:
    """The routes of one API module (see the module docstring).

    Args:
        prefix: prepended to every path (after the prefix given to :meth:`add_to`).
        tags: OpenAPI tags of every route (before each route's own).
        dependencies: run before every route's own dependencies.
        route_class: the ``APIRoute`` subclass the routes are built with (by default
            one that parses JSON bodies strictly, see :mod:`sluice.server.json_bodies`).
    """

    prefix: str = ""
    tags: Sequence[str] = ()
    dependencies: Sequence[Depends] = ()
    route_class: type[APIRoute] = StrictJSONRoute
    _routes: list[_Route] = field(default_factory=list)

    def api_route(self, path: str, *, methods: Sequence[str], **options: Any) -> Callable[[F], F]:
        """Record the decorated function as the endpoint of ``methods`` on ``path``;
        ``options`` are those of ``APIRouter.add_api_route``."""

        def record(endpoint: F) -> F:
            self._routes.append(_Route(path, endpoint, list(methods), options))
            return endpoint

        return record

    def get(self, path: str, **options: Any) -> Callable[[F], F]:
        """``@router.get(path, ...)``, as on an ``APIRouter``."""
        return self.api_route(path, methods=["GET"], **options)

    def post(self, path: str, **options: Any) -> Callable[[F], F]:
        """``@router.post(path, ...)``, as on an ``APIRouter``."""
        return self.api_route(path, methods=["POST"], **options)

    def put(self, path: str, **options: Any) -> Callable[[F], F]:
        """``@router.put(path, ...)``, as on an ``APIRouter``."""
        return self.api_route(path, methods=["PUT"], **options)

    def patch(self, path: str, **options: Any) -> Callable[[F], F]:
        """``@router.patch(path, ...)``, as on an ``APIRouter``."""
        return self.api_route(path, methods=["PATCH"], **options)

    def delete(self, path: str, **options: Any) -> Callable[[F], F]:
        """``@router.delete(path, ...)``, as on an ``APIRouter``."""
        return self.api_route(path, methods=["DELETE"], **options)

    def paths(self, prefix: str = "") -> set[str]:
        """The full paths of the recorded routes under ``prefix``."""
        return {prefix + self.prefix + route.path for route in self._routes}

    def add_to(self, router: APIRouter, prefix: str = "") -> None:
        """Build every recorded route on ``router`` (an app's ``app.router``), under
        ``prefix`` then this table's own prefix, in the order they were declared."""
        for route in self._routes:
            options = dict(route.options)
            tags = [*self.tags, *options.pop("tags", ())]
            dependencies = [*self.dependencies, *options.pop("dependencies", ())]
            router.add_api_route(
                prefix + self.prefix + route.path,
                route.endpoint,
                methods=route.methods,
                tags=tags or None,
                dependencies=dependencies or None,
                route_class_override=self.route_class,
                **options,
            )
