"""The server's ingest writer: each ingest request's rows committed in one transaction.

The API server commits each ingest request's records in one transaction on
the request's own worker thread: handing them to a writer
thread would add two thread wake-ups per request, which on a busy machine
cost more than the write itself. Requests from several clients take turns
(SQLite has one writer at a time; the store's connection lock and busy
retries order them) or run side by side (PostgreSQL).

SQLite is written through the store's native path
(:class:`~sluice.store.sqlite_native.SqliteStore`, on its own connection),
binding parameter tuples (:func:`value_groups_of`); PostgreSQL through the
SQLAlchemy statements of :mod:`sluice.store.writes` with a
:class:`~sluice.store.rows.RowBatch` (:func:`rows_of`), on the engine it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sluice.api_schemas import IngestBatch
from sluice.store.fencing import FENCES, fence_row
from sluice.store.rows import (
    RowBatch,
    flow_row,
    flow_run_row,
    heartbeat_row,
    log_row,
    log_snapshot,
    log_values,
    state_row,
    state_snapshot,
    state_values,
    task_run_row,
    task_run_snapshot,
    task_run_values,
)
from sluice.store.sqlite_native import SqliteStore, ValueGroup, row_values, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sluice.backend.local import LocalBackend


def rows_of(batch: IngestBatch) -> RowBatch:
    """The table rows of an ingest batch (conversions as in the embedded store)."""
    return RowBatch(
        flows=[flow_row(f) for f in batch.flows],
        flow_runs=[flow_run_row(r) for r in batch.flow_runs],
        task_runs=[task_run_row(task_run_snapshot(r)) for r in batch.task_runs],
        states=[state_row(state_snapshot(s)) for s in batch.states],
        logs=[log_row(log_snapshot(r)) for r in batch.logs],
        heartbeats=[heartbeat_row(h.flow_run_id, h.at.timestamp()) for h in batch.heartbeats],
        fences=[fence_row(f.flow_run_id, f.attempt) for f in batch.fences],
    )


def value_groups_of(batch: IngestBatch) -> list[ValueGroup]:
    """The SQLite writer's parameter tuples of an ingest batch, group by group.

    The many records of a batch (task runs, states, logs) become tuples
    directly, as in the embedded writer, without a dict per row; SQLite has
    one writer at a time, so nothing needs sorting into a lock order.
    """
    groups: list[ValueGroup] = []
    if batch.fences:
        groups.append((FENCES, [(f.flow_run_id, f.attempt) for f in batch.fences]))
    if batch.flows:
        groups.append(("flows", row_values("flows", map(flow_row, batch.flows))))
    if batch.flow_runs:
        groups.append(("flow_runs", row_values("flow_runs", map(flow_run_row, batch.flow_runs))))
    if batch.task_runs:
        values = [task_run_values(task_run_snapshot(r)) for r in batch.task_runs]
        groups.append(("task_runs", values))
    if batch.states:
        groups.append(("states", [state_values(state_snapshot(s)) for s in batch.states]))
    if batch.logs:
        groups.append(("logs", [log_values(log_snapshot(r)) for r in batch.logs]))
    if batch.heartbeats:
        beats = [heartbeat_row(h.flow_run_id, h.at.timestamp()) for h in batch.heartbeats]
        groups.append(("heartbeats", row_values("heartbeats", beats)))
    return groups


def open_ingest_writer(backend: LocalBackend) -> IngestWriter:
    """An ingest writer to the database of the server's ``backend`` (sharing its
    SQLAlchemy engine, created when first needed)."""
    database = backend.database
    return IngestWriter(
        database.url,
        lambda: database.engine,
        lock_timeout=database.lock_timeout,
        label=database.label,
    )


class IngestWriter:
    """Commit row batches to the database at ``url``.

    Args:
        url: the database URL (SQLite files get their own native connection).
        engine: gets the SQLAlchemy engine (only when needed: the SQLite path
            needs none until :meth:`write_resent`), which writes to any
            database but SQLite.
        lock_timeout: how long a write keeps retrying while the database is busy.
        label: the database's name in messages.
    """

    def __init__(
        self, url: str, engine: Callable[[], Engine], *, lock_timeout: float, label: str
    ) -> None:
        self._engine = engine
        self._lock_timeout = lock_timeout
        self._label = label
        path = sqlite_file(url)
        self._sqlite: SqliteStore | None = None
        if path is not None:
            self._sqlite = SqliteStore(path, lock_timeout=lock_timeout)
        else:
            self._write_rows = _sqlalchemy_writer(engine(), lock_timeout, label)

    def write(self, batch: IngestBatch) -> set[str]:
        """Commit ``batch`` in one transaction (retried while the database is busy); the
        fenced runs a later attempt took over (their records are refused).

        Raises:
            StoreError: the write failed; nothing of ``batch`` is stored.
        """
        if self._sqlite is not None:
            return self._sqlite.write_values(value_groups_of(batch))
        return self._write_rows(rows_of(batch))

    def write_resent(self, rows: RowBatch) -> tuple[int, set[str]]:
        """Commit ``rows`` that may be in the database already (a batch sent again),
        in one transaction: runs, flows and heartbeats as usual (upserts), and only
        the states and log lines the database does not hold yet; how many states
        and lines were new, and the fenced runs a later attempt took over.

        Raises:
            StoreError: the write failed; nothing of ``rows`` is stored.
        """
        from sluice.store import dedup
        from sluice.store.database import run_write

        return run_write(
            self._engine(),
            lambda conn: dedup.write_resent(conn, rows),
            lock_timeout=self._lock_timeout,
            label=self._label,
        )

    def close(self) -> None:
        """Close the connection (every write has returned: nothing is pending)."""
        if self._sqlite is not None:
            self._sqlite.close()


def _sqlalchemy_writer(
    engine: Engine, lock_timeout: float, label: str
) -> Callable[[RowBatch], set[str]]:
    def write(rows: RowBatch) -> set[str]:
        from sluice.store import writes
        from sluice.store.database import run_write

        return run_write(
            engine,
            lambda conn: writes.write_batch(conn, rows),
            lock_timeout=lock_timeout,
            label=label,
        )

    return write
