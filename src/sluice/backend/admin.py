"""Administering a store from the command line: upgrade, reset, check.

``sluice server database ...`` must work on a database no server or flow has
opened yet (and must not leave a backend's writer behind), so these open the
database themselves, do one thing, and close it. They live here, at the
store's door, so the CLI reaches the store through the backend layer only.
"""

from __future__ import annotations

from sluice.store.database import database_label, open_engine
from sluice.store.health import StoreHealth, check_store
from sluice.store.migrate import current_revision, ensure_schema, reset, upgrade


def store_label(url: str) -> str:
    """How messages name the database at ``url`` (its path, or its URL without password)."""
    return database_label(url)


def upgrade_store(url: str) -> str:
    """Bring the database at ``url`` to this Sluice's schema, creating it if it is
    empty; its label.

    Raises:
        StoreError: the database cannot be reached, or is not a Sluice store.
    """
    engine, label = open_engine(url), database_label(url)
    try:
        with engine.connect() as conn:
            revision = current_revision(conn)
        if revision is None:
            ensure_schema(engine, lock_timeout=60.0, label=label)
        else:
            upgrade(engine, label=label)
    finally:
        engine.dispose()
    return label


def reset_store(url: str) -> str:
    """Drop every table of the database at ``url`` and create an empty store; its label."""
    engine, label = open_engine(url), database_label(url)
    try:
        reset(engine, label=label)
    finally:
        engine.dispose()
    return label


def check_store_health(url: str, *, quick: bool = False) -> StoreHealth:
    """The state of the store at ``url`` (see :func:`sluice.store.health.check_store`);
    changes nothing."""
    return check_store(url, quick=quick)
