"""The backend and settings a command works with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.settings import Settings


def load_cli_settings() -> Settings:
    """Settings from the config file and environment, read when a command runs."""
    from sluice.settings import load_settings

    return load_settings()


def cli_backend(settings: Settings | None = None) -> Backend:
    """The process's shared backend for the configured database.

    Imported lazily: the store pulls in SQLAlchemy, which ``sluice --help`` and
    ``sluice config`` must not pay for. Not closed by the command: it is the
    same object the engine records through (``sluice run``), and the factory
    flushes and closes it at interpreter exit.
    """
    from sluice.backend.factory import get_backend

    return get_backend(settings or load_cli_settings())
