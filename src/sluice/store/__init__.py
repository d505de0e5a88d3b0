"""The embedded store: SQLAlchemy Core schema, queries and migrations.

SQLite (WAL) on one machine, PostgreSQL beyond; the same code serves both.
Importing this package imports SQLAlchemy, so ``import sluice`` must not.
"""

from __future__ import annotations

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from sluice.store.database import database_label, open_engine, store_error
from sluice.store.migrate import ensure_schema


def open_store(url: str, *, lock_timeout: float = 60.0) -> Engine:
    """Open the database at ``url`` and make sure it holds the current schema.

    Connects at once, so a broken database is reported here and not at the
    first write.

    Raises:
        StoreCorruptError: the file is not a (Sluice) database, naming its path.
        StoreError: the database cannot be opened, created or upgraded.
    """
    engine = open_engine(url, lock_timeout=lock_timeout)
    label = database_label(url)
    try:
        ensure_schema(engine, lock_timeout=lock_timeout, label=label)
    except DBAPIError as exc:
        engine.dispose()
        raise store_error(exc, label) from exc
    except BaseException:
        engine.dispose()
        raise
    return engine


__all__ = ["open_store"]
