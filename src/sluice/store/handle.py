"""``Database``: one store's database as a process uses it, for reads, write
transactions and the server's singleton locks.

It knows the database's URL, what to call it in messages, how long a write
waits for a busy lock, and holds the SQLAlchemy engine, made on first use on
SQLite: a process that only writes run records there uses the standard
library's sqlite3 (:mod:`sluice.store.sqlite_native`) and never imports
SQLAlchemy, which this module therefore imports only when asked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from sluice.store.retry import driver_error, retry_when_busy, store_error
from sluice.store.sqlite_native import sqlite_file

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from sluice.store.locks import SingletonLock

T = TypeVar("T")


class Database:
    """The database at ``url`` (see the module docstring).

    Args:
        url: the database URL.
        label: its name in messages (a file path, a URL without password).
        lock_timeout: how long reads and writes keep retrying while it is busy.
        engine: its SQLAlchemy engine, when the caller made one (None: made on first use).
    """

    def __init__(
        self, url: str, *, label: str, lock_timeout: float, engine: Engine | None = None
    ) -> None:
        self.url = url
        self.label = label
        self.lock_timeout = lock_timeout
        self._engine = engine
        self._engine_lock = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine (made on first use on SQLite, thread-safe)."""
        engine = self._engine
        if engine is None:
            with self._engine_lock:
                engine = self._engine
                if engine is None:
                    from sluice.store.database import open_engine

                    engine = open_engine(self.url, lock_timeout=self.lock_timeout)
                    self._engine = engine
        return engine

    @property
    def is_sqlite(self) -> bool:
        """Whether the database is a SQLite file."""
        return sqlite_file(self.url) is not None

    def read(self, query: Callable[[Connection], T]) -> T:
        """``query(conn)`` on a connection, retried while the database is busy.

        Raises:
            StoreError: the database stayed busy past the lock timeout, or failed.
        """
        engine = self.engine

        def attempt() -> T:
            with engine.connect() as conn:
                return query(conn)

        try:
            # WAL readers are rarely busy (only while another connection
            # recovers or resets the log); a retry beats an error then.
            return retry_when_busy(attempt, lock_timeout=self.lock_timeout, label=self.label)
        except Exception as exc:
            if driver_error(exc) is None:
                raise
            raise store_error(exc, self.label) from exc

    def write(self, work: Callable[[Connection], T]) -> T:
        """``work(conn)`` in one committed write transaction (``BEGIN IMMEDIATE`` on
        SQLite), retried while the database is busy.

        Raises:
            StoreError: the database stayed busy past the lock timeout, or failed.
        """
        from sluice.store.database import run_write

        return run_write(self.engine, work, lock_timeout=self.lock_timeout, label=self.label)

    def singleton_lock(self, name: str) -> SingletonLock:
        """The lock that lets one of several servers sharing this database run the
        service ``name`` (always granted on SQLite, whose file one server serves)."""
        from sluice.store.locks import SingletonLock

        return SingletonLock(None if self.is_sqlite else self.engine, name)

    def dispose(self) -> None:
        """Close the engine's connections, if it was made."""
        with self._engine_lock:
            engine = self._engine
        if engine is not None:
            engine.dispose()
