"""Each operation's one implementation, found by its request type.

An implementation is a function of a connection and the request (SQL through
the store's query and write modules), registered with :func:`implements`:
whether it writes (run in a write transaction, ``BEGIN IMMEDIATE`` on
SQLite) or only reads. The embedded store runs it in one transaction
(:meth:`sluice.backend.local.LocalBackend.execute`); the server runs the same
one for its clients. The modules holding implementations are imported when
the first one is looked up (they import SQLAlchemy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sluice.operations.base import Operation

if TYPE_CHECKING:
    from sqlalchemy import Connection

    from sluice.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])

#: the modules whose functions implement operations
IMPLEMENTING_MODULES = ("sluice.store.run_operations", "sluice.store.deployment_operations")


@dataclass(frozen=True, slots=True)
class Implementation:
    """How an operation runs: ``function(conn, request)`` (with ``settings`` as a
    third argument when it needs the store's settings), in a write transaction
    or a read."""

    function: Callable[..., Any]
    writes: bool
    needs_settings: bool

    def run(self, conn: Connection, request: Operation[Any], settings: Settings) -> Any:
        """The request's answer, on ``conn``."""
        if self.needs_settings:
            return self.function(conn, request, settings)
        return self.function(conn, request)


_REGISTRY: dict[type[Operation[Any]], Implementation] = {}
_loaded = False


def implements(
    op_type: type[Operation[Any]], *, writes: bool = False, needs_settings: bool = False
) -> Callable[[F], F]:
    """Register the decorated function as the implementation of ``op_type``.

    Args:
        writes: it changes the store (one write transaction); otherwise a read.
        needs_settings: it takes the store's settings as a third argument.
    """

    def register(function: F) -> F:
        if op_type in _REGISTRY:
            raise TypeError(f"{op_type.__name__} has two implementations")
        _REGISTRY[op_type] = Implementation(function, writes, needs_settings)
        return function

    return register


def implementation_of(op_type: type[Operation[Any]]) -> Implementation:
    """The implementation of ``op_type``.

    Raises:
        TypeError: ``op_type`` has none.
    """
    implementation = _REGISTRY.get(op_type) or _all().get(op_type)
    if implementation is None:
        raise TypeError(f"no store implements {op_type.__name__}")
    return implementation


def implemented() -> frozenset[type[Operation[Any]]]:
    """Every request type that has an implementation."""
    return frozenset(_all())


def _all() -> dict[type[Operation[Any]], Implementation]:
    global _loaded
    if not _loaded:
        for module in IMPLEMENTING_MODULES:
            importlib.import_module(module)
        _loaded = True
    return _REGISTRY
