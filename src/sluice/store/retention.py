"""Deleting old run logs in small transactions, so writers never wait long.

Each round first finds the next few hundred ids of lines older than the
cutoff (a read: on SQLite in WAL mode it blocks no writer) and then deletes
exactly those ids in one short write transaction. The search goes forward
from the last id deleted, so one pass reads the log table at most once,
whatever is left behind (lines stored late with old times are found by the
next pass, which starts over).
"""

from __future__ import annotations

import datetime as _dt
import functools
from dataclasses import dataclass

from sqlalchemy import Connection, delete, select

from sluice.store.handle import Database
from sluice.store.schema import log

#: log lines deleted per write transaction
DELETE_CHUNK = 500


@dataclass(frozen=True)
class Purged:
    """What one pass deleted."""

    #: log lines deleted
    lines: int
    #: write transactions it took (each at most ``chunk`` lines)
    transactions: int


def delete_logs_before(
    database: Database, cutoff: _dt.datetime, *, chunk: int = DELETE_CHUNK
) -> Purged:
    """Delete the log lines timestamped before ``cutoff``, ``chunk`` lines per transaction.

    Raises:
        StoreError: the database stayed busy past its lock timeout, or failed.
    """
    before = cutoff.timestamp()
    after = 0
    lines = transactions = 0
    while True:
        ids = database.read(functools.partial(_old_ids, before, after, chunk))
        if not ids:
            break
        database.write(functools.partial(_delete, ids))
        lines += len(ids)
        transactions += 1
        after = ids[-1]
        if len(ids) < chunk:
            break
    return Purged(lines, transactions)


def _delete(ids: list[int], conn: Connection) -> None:
    conn.execute(delete(log).where(log.c.id.in_(ids)))


def _old_ids(before: float, after: int, chunk: int, conn: Connection) -> list[int]:
    stmt = (
        select(log.c.id)
        .where(log.c.id > after, log.c.timestamp < before)
        .order_by(log.c.id)
        .limit(chunk)
    )
    return list(conn.scalars(stmt))
