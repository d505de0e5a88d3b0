"""The embedded store: SQLAlchemy Core schema, queries and migrations.

SQLite (WAL) on one machine, PostgreSQL beyond; the same code serves both,
except that a process running flows on SQLite opens the store and writes to
it with the standard library alone (:mod:`sluice.store.sqlite_native`).

Importing this package imports nothing heavy: ``import sluice`` and a plain
flow run must not pay for SQLAlchemy. The modules that need it import it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Engine


def open_store(url: str, *, lock_timeout: float = 60.0) -> Engine:
    """Open the database at ``url`` with SQLAlchemy and make sure it holds the current schema.

    Connects at once, so a broken database is reported here and not at the
    first write.

    Raises:
        StoreCorruptError: the file is not a (Sluice) database, naming its path.
        StoreError: the database cannot be opened, created or upgraded.
    """
    from sqlalchemy.exc import DBAPIError

    from sluice.store.database import database_label, open_engine
    from sluice.store.migrate import ensure_schema
    from sluice.store.retry import store_error

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
