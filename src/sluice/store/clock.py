"""The database's clock: the one clock liveness is decided with.

Heartbeats are stamped, and compared, with the time of the database server
(PostgreSQL's ``clock_timestamp()``; for SQLite, whose writers all run on the
host that holds the file, that host's clock). A process whose own clock is
minutes off therefore neither looks dead while it beats nor alive after it
stopped: see docs/architecture.md, "Liveness and fencing".
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Double, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class db_now(FunctionElement[float]):
    """The database's current time in epoch seconds (a SQL expression)."""

    type = Double()
    inherit_cache = True


@compiles(db_now, "sqlite")
def _sqlite_now(element: Any, compiler: Any, **kw: Any) -> str:
    # julianday() without arguments is 'now', to the millisecond; written
    # without a quoted literal so the generated SQL text stays plain.
    return "((julianday() - 2440587.5) * 86400.0)"


@compiles(db_now, "postgresql")
def _postgresql_now(element: Any, compiler: Any, **kw: Any) -> str:
    # clock_timestamp(), not now(): the latter is frozen at the transaction's start.
    return "CAST(EXTRACT(EPOCH FROM clock_timestamp()) AS DOUBLE PRECISION)"


def read_db_now(conn: Connection) -> float:
    """The database's current time, epoch seconds."""
    return float(conn.execute(select(db_now())).scalar_one())


__all__ = ["db_now", "read_db_now"]
