"""Singleton locks: exactly one of several server processes runs a given service.

On PostgreSQL a session-level advisory lock (``pg_try_advisory_lock``) held on
a dedicated connection: it is released when the holder closes the connection
or dies, so another server takes over at its next try. SQLite stores live on
one machine and are served by one server, so the lock is always granted there.
"""

from __future__ import annotations

import contextlib
import zlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine


def lock_key(name: str) -> int:
    """A stable 63-bit advisory lock key for a service name."""
    # crc32 is stable across processes and Python versions (``hash`` is salted).
    return 0x51_1C_E0_00_00_00_00 | zlib.crc32(f"sluice:{name}".encode())


class SingletonLock:
    """A lock named ``name`` on the database behind ``engine`` (None: SQLite, always granted).

    Not thread-safe: one owner calls :meth:`try_acquire` and :meth:`release`.
    """

    def __init__(self, engine: Engine | None, name: str) -> None:
        self._engine = engine if engine is not None and engine.dialect.name != "sqlite" else None
        self.name = name
        self.key = lock_key(name)
        self._conn: Connection | None = None
        self._held = False

    @property
    def held(self) -> bool:
        return self._held if self._engine is not None else True

    def try_acquire(self) -> bool:
        """True if this process holds the lock (now or already); never waits.

        While held, each call checks the connection is still alive: a lost
        connection means PostgreSQL released the lock, so it is dropped here too
        and tried again.
        """
        if self._engine is None:
            return True
        from sqlalchemy.exc import DBAPIError

        try:
            if self._conn is None:
                self._conn = self._engine.connect()
                # Autocommit: the session-level lock must not ride on a
                # transaction that stays open (and idle) for hours.
                self._conn = self._conn.execution_options(isolation_level="AUTOCOMMIT")
            if self._held:
                self._conn.exec_driver_sql("SELECT 1")
            else:
                got = self._conn.exec_driver_sql(
                    "SELECT pg_try_advisory_lock(%(key)s)", {"key": self.key}
                ).scalar()
                self._held = bool(got)
        except DBAPIError:
            self._drop()
        return self._held

    def release(self) -> None:
        """Let go of the lock (closing the session releases it)."""
        self._drop()

    def _drop(self) -> None:
        conn, self._conn, self._held = self._conn, None, False
        if conn is not None:
            # Closing a dead connection may fail; the server side is gone anyway.
            with contextlib.suppress(Exception):
                conn.close()
