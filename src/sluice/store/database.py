"""Opening the database with SQLAlchemy, and write transactions that survive concurrent writers.

PostgreSQL goes through here for everything; SQLite only for reads and
migrations (a process that just runs flows writes with the standard library
alone, see :mod:`sluice.store.sqlite_native`, and sets connections up the
same way).

SQLite gets WAL (readers never block the writer), ``synchronous=NORMAL``
(durable at each checkpoint, fast commits) and write transactions that start
with ``BEGIN IMMEDIATE``: a deferred transaction that reads and then writes
must upgrade its lock, and two processes doing that at once deadlock (one gets
"database is locked" at once, whatever the busy timeout). Taking the write
lock up front turns that into an orderly wait. PostgreSQL needs none of this;
the same code runs there unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sluice.errors import StoreError
from sluice.store.retry import retry_when_busy, store_error
from sluice.store.sqlite_native import busy_wait, configure, prepare_file, sqlite_file

T = TypeVar("T")

#: execution option marking a connection whose transactions will write
_WRITE_OPTION = "sluice_write"


def database_label(url: str) -> str:
    """What to call the database in messages: the file path, or the URL without password."""
    path = sqlite_file(url)
    if path is not None:
        return str(path)
    return make_url(url).render_as_string(hide_password=True)


def open_engine(url: str, *, lock_timeout: float = 60.0) -> Engine:
    """Create an engine for ``url`` (no connection is made yet).

    SQLite: see :func:`sqlite_engine`. In-memory SQLite is refused: the
    batcher's writer and the readers use separate connections, which would
    each see a different empty database.

    Raises:
        StoreError: the URL is unusable or the database folder cannot be created.
    """
    path = sqlite_file(url)
    if path is not None:
        return sqlite_engine(path, lock_timeout=lock_timeout)
    try:
        parsed = make_url(url)
    except SQLAlchemyError as exc:
        raise StoreError(f"Invalid database URL {url!r}: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        _quiet_pipeline_teardown()
        return create_engine(parsed, pool_pre_ping=True)
    raise StoreError(f"Sluice's store runs on SQLite or PostgreSQL, not {backend} ({url})")


class _PipelineTeardownFilter(logging.Filter):
    """Drops psycopg's "error ignored terminating <psycopg.Pipeline [BAD]>" lines.

    When the connection is lost inside a pipeline (the database went away in
    the middle of a batch), psycopg logs the second error it meets while
    leaving the pipeline, at WARNING on a logger nobody configured, so Python
    prints it on stderr. The first error is raised and handled (the writer
    retries the batch); the line only alarms the user.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("error ignored terminating")


_PIPELINE_FILTER = _PipelineTeardownFilter()


def _quiet_pipeline_teardown() -> None:
    logger = logging.getLogger("psycopg")
    if _PIPELINE_FILTER not in logger.filters:
        logger.addFilter(_PIPELINE_FILTER)


def sqlite_engine(path: Path, *, lock_timeout: float = 60.0) -> Engine:
    """An engine for the SQLite file ``path``, its folder created.

    Every connection is set up for concurrent use (see the module docstring).
    """
    prepare_file(path)
    engine = create_engine(
        URL.create("sqlite", database=str(path)),
        connect_args={"timeout": busy_wait(lock_timeout), "check_same_thread": False},
    )
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    configure(dbapi_connection)


def _sqlite_on_begin(conn: Connection) -> None:
    if conn.get_execution_options().get(_WRITE_OPTION):
        conn.exec_driver_sql("BEGIN IMMEDIATE")
    else:
        conn.exec_driver_sql("BEGIN")


# -- write transactions ---------------------------------------------------------


@contextmanager
def write_connection(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction (``BEGIN IMMEDIATE`` on SQLite), committed on exit."""
    with engine.connect() as conn:
        conn.execution_options(**{_WRITE_OPTION: True})
        with conn.begin():
            yield conn


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
