"""Driver errors, for both ways the store talks to a database.

The embedded SQLite writer uses :mod:`sqlite3` directly (see
:mod:`sluice.store.sqlite_native`); everything else goes through SQLAlchemy,
which wraps the driver's exception in a ``DBAPIError``. This module answers
the same two questions for both without importing SQLAlchemy (a plain flow
run never pays for it): is the error worth retrying (another writer holds the
database), and which :class:`~sluice.errors.StoreError` reports it otherwise. It also
tells an *outage* (the database is away: no connection, a full or failing
disk), which the embedded writer waits out, from errors that resending the
same records cannot cure.
"""

from __future__ import annotations

import random
import sqlite3
import sys
import time
from collections.abc import Callable
from typing import TypeVar

from sluice.errors import StoreCorruptError, StoreError

T = TypeVar("T")

_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")
#: PostgreSQL: serialization failure, deadlock detected
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_CORRUPT_MESSAGES = ("file is not a database", "malformed", "file is encrypted")
#: SQLite result codes of a disk that is full or failing, or a file that cannot be opened
_SQLITE_OUTAGE_CODES = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_CANTOPEN")
_SQLITE_OUTAGE_MESSAGES = ("disk is full", "disk i/o error", "unable to open database file")
#: PostgreSQL SQLSTATE classes and codes of an outage: connection exception,
#: insufficient resources (disk full, out of memory, too many connections),
#: system error (I/O), and the server shutting down or starting up
_PG_OUTAGE_CLASSES = ("08", "53", "58")
_PG_OUTAGE_CODES = frozenset({"57P01", "57P02", "57P03"})


def driver_error(exc: BaseException) -> BaseException | None:
    """The driver's exception behind ``exc``, or ``None`` when ``exc`` is not a database error.

    A ``sqlite3`` error is its own driver error; a SQLAlchemy ``DBAPIError``
    carries it in ``orig``.
    """
    if isinstance(exc, sqlite3.Error):
        return exc
    # Only look for SQLAlchemy's class if something already imported it: an
    # exception cannot be an instance of a class that was never loaded.
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        orig: BaseException | None = exc.orig
        return orig if orig is not None else exc
    return None


def is_busy_error(exc: BaseException) -> bool:
    """True when ``exc`` says another writer holds the database (worth retrying)."""
    orig = driver_error(exc)
    if orig is None:
        return False
    if getattr(orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    text = str(orig).lower()
    return any(message in text for message in _BUSY_MESSAGES)


def is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or an error it was raised from) says the database is away:
    unreachable, shutting down, out of disk space or failing I/O. Writing the same
    records again later can succeed; the embedded writer waits these out.

    "Database is locked" is not one: it has its own timeout (``lock_timeout``).
    """
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if _outage_itself(current):
            return True
        seen += 1
        if current.__cause__ is not None or current.__suppress_context__:
            current = current.__cause__
        else:
            current = current.__context__
    return False


def _outage_itself(exc: BaseException) -> bool:
    if isinstance(exc, OSError):
        return True
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    orig = driver_error(exc)
    if orig is None or is_busy_error(orig):
        return False
    if isinstance(orig, sqlite3.Error):
        name = getattr(orig, "sqlite_errorname", "")
        text = str(orig).lower()
        return name.startswith(_SQLITE_OUTAGE_CODES) or any(
            message in text for message in _SQLITE_OUTAGE_MESSAGES
        )
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate:
        return sqlstate[:2] in _PG_OUTAGE_CLASSES or sqlstate in _PG_OUTAGE_CODES
    # A driver's OperationalError without a SQLSTATE: the connection itself
    # failed (refused, reset, closed by a server that went away).
    return type(orig).__name__ == "OperationalError"


def retry_when_busy(
    fn: Callable[[], T],
    *,
    lock_timeout: float,
    label: str = "the Sluice database",
) -> T:
    """Call ``fn`` again, with exponential backoff and jitter, while the database is busy.

    ``fn`` must be a whole transaction (it is re-run from the start). Errors
    that are not "busy" propagate unchanged.

    Raises:
        StoreError: still busy after ``lock_timeout`` seconds, naming ``label``.
    """
    deadline = time.monotonic() + lock_timeout
    delay = 0.005
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_busy_error(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreError(
                    f"{label} stayed locked by another writer for {lock_timeout:g} s: "
                    f"{driver_error(exc)}"
                ) from exc
            # Full jitter keeps competing processes from retrying in lockstep.
            time.sleep(min(remaining, random.uniform(0, delay)))
            delay = min(delay * 2, 0.5)


def store_error(exc: BaseException, label: str) -> StoreError:
    """The :class:`StoreError` to raise for a driver error on the database ``label``.

    A file that is not a database (or a damaged one) becomes a
    :class:`StoreCorruptError` naming ``label``.
    """
    if isinstance(exc, StoreError):
        return exc
    reason = str(driver_error(exc) or exc)
    if any(message in reason.lower() for message in _CORRUPT_MESSAGES):
        return StoreCorruptError(label, reason)
    return StoreError(f"The Sluice database at {label} failed: {reason}")


__all__ = ["driver_error", "is_busy_error", "is_unavailable", "retry_when_busy", "store_error"]
