"""Driver errors, for both ways the store talks to a database.

The embedded SQLite writer uses :mod:`sqlite3` directly (see
:mod:`sluice.store.sqlite_native`); everything else goes through SQLAlchemy,
which wraps the driver's exception in a ``DBAPIError``. This module answers
the same two questions for both without importing SQLAlchemy (a plain flow
run never pays for it): is the error worth retrying (another writer holds the
database), and which :class:`~sluice.errors.StoreError` reports it otherwise.
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


__all__ = ["driver_error", "is_busy_error", "retry_when_busy", "store_error"]
