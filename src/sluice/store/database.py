"""Opening the database, and write transactions that survive concurrent writers.

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL``
(durable at each checkpoint, fast commits) and write transactions that start
with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
must upgrade its lock, and two processes doing that at once deadlock (one gets
"database is locked" at once, whatever the busy timeout). Taking the write
lock up front turns that into an orderly wait. PostgreSQL needs none of this;
the same code runs there unchanged.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sluice.errors import StoreCorruptError, StoreError

T = TypeVar("T")

#: execution option marking a connection whose transactions will write
_WRITE_OPTION = "sluice_write"
#: longest single busy wait inside SQLite before our own retry loop takes over
_MAX_BUSY_WAIT = 1.0
_BUSY_MESSAGES = ("database is locked", "database is busy", "database table is locked")
#: PostgreSQL: serialization failure, deadlock detected
_RETRY_SQLSTATES = frozenset({"40001", "40P01"})
_CORRUPT_MESSAGES = ("file is not a database", "malformed", "file is encrypted")


def database_label(url: str) -> str:
    """What to call the database in messages: the file path, or the URL without password."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return str(Path(parsed.database or "").expanduser().resolve())
    return parsed.render_as_string(hide_password=True)


def open_engine(url: str, *, lock_timeout: float = 60.0) -> Engine:
    """Create an engine for ``url`` (no connection is made yet).

    SQLite: the parent folder is created and every connection is set up for
    concurrent use (see the module docstring). In-memory SQLite is refused:
    the batcher's writer and the readers use separate connections, which
    would each see a different empty database.

    Raises:
        StoreError: the URL is unusable or the database folder cannot be created.
    """
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"Invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        return create_engine(parsed, pool_pre_ping=True)
    if backend != "sqlite":
        raise StoreError(f"Sluice's store runs on SQLite or PostgreSQL, not {backend} ({url})")
    path = parsed.database or ""
    if path in ("", ":memory:") or parsed.query.get("mode") == "memory":
        raise StoreError(f"In-memory SQLite is not supported as a Sluice store ({url}); use a file")
    _make_parent(Path(path).expanduser())
    busy_wait = max(0.0, min(lock_timeout, _MAX_BUSY_WAIT))
    engine = create_engine(
        parsed,
        connect_args={"timeout": busy_wait, "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"Cannot create the folder of the Sluice database {path}: {exc.strerror or exc}"
        ) from exc
    if path.is_dir():
        raise StoreError(f"The Sluice database path {path} is a directory, not a file")


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Take transaction control away from the sqlite3 module: it would not
    # BEGIN before SELECTs nor let us choose IMMEDIATE (see _sqlite_on_begin).
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


# -- write transactions ---------------------------------------------------------


def is_busy_error(exc: BaseException) -> bool:
    """True when ``exc`` says another writer holds the database (worth retrying)."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    text = str(exc.orig).lower()
    return any(message in text for message in _BUSY_MESSAGES)


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


def retry_when_busy(
    fn: Callable[[], T],
    *,
    lock_timeout: float,
    label: str = "the Sluice database",
) -> T:
    """Call ``fn`` again, with exponential backoff and jitter, while the database is busy.

    ``fn`` must be a whole transaction (it is re-run from the start).

    Raises:
        StoreError: still busy after ``lock_timeout`` seconds, naming ``label``.
    """
    deadline = time.monotonic() + lock_timeout
    delay = 0.005
    while True:
        try:
            return fn()
        except DBAPIError as exc:
            if not is_busy_error(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise StoreError(
                    f"{label} stayed locked by another writer for {lock_timeout:g} s: {exc.orig}"
                ) from exc
            # Full jitter keeps competing processes from retrying in lockstep.
            time.sleep(min(remaining, random.uniform(0, delay)))
            delay = min(delay * 2, 0.5)


def run_write(
    engine: Engine,
    work: Callable[[Connection], T],
    *,
    lock_timeout: float,
    label: str = "the Sluice database",
) -> T:
    """Run ``work(conn)`` in one write transaction, retried while the database is busy.

    Raises:
        StoreError: the database stayed busy past ``lock_timeout``, or failed otherwise.
    """

    def attempt() -> T:
        with write_connection(engine) as conn:
            return work(conn)

    try:
        return retry_when_busy(attempt, lock_timeout=lock_timeout, label=label)
    except DBAPIError as exc:
        raise store_error(exc, label) from exc


def store_error(exc: BaseException, label: str) -> StoreError:
    """The :class:`StoreError` to raise for a driver error on the database ``label``."""
    if isinstance(exc, StoreError):
        return exc
    reason = str(exc.orig) if isinstance(exc, DBAPIError) else str(exc)
    if any(message in reason.lower() for message in _CORRUPT_MESSAGES):
        return StoreCorruptError(label, reason)
    return StoreError(f"The Sluice database at {label} failed: {reason}")
