"""The server's ingest writer: row batches made durable, concurrent requests sharing transactions.

The API server turns each ingest request into one :class:`~sluice.store.rows.RowBatch`
on the request's thread and hands it here; :meth:`RowWriter.write` returns once
it is committed. Batches handed in while a transaction is being written are
merged and committed together by one writer thread (group commit), so many
clients posting at once cost one transaction per round, not one per request.

SQLite is written through the store's native path
(:class:`~sluice.store.sqlite_native.SqliteStore`, on its own connection);
PostgreSQL through the SQLAlchemy statements of :mod:`sluice.store.writes`,
on the engine it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sluice.api_schemas import IngestBatch
from sluice.backend.batcher import WriteBatch, WriteBehindBatcher
from sluice.store.rows import (
    WRITE_ORDER,
    RowBatch,
    flow_row,
    flow_run_row,
    heartbeat_row,
    log_row,
    log_snapshot,
    state_row,
    state_snapshot,
    task_run_row,
    task_run_snapshot,
)
from sluice.store.sqlite_native import SqliteStore, sqlite_file

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sluice.backend.local import LocalBackend

_ROWS = 0
#: row batches waiting before callers of write() are held back
_MAX_PENDING = 1000


def rows_of(batch: IngestBatch) -> RowBatch:
    """The table rows of an ingest batch (conversions as in the embedded store)."""
    return RowBatch(
        flows=[flow_row(f) for f in batch.flows],
        flow_runs=[flow_run_row(r) for r in batch.flow_runs],
        task_runs=[task_run_row(task_run_snapshot(r)) for r in batch.task_runs],
        states=[state_row(state_snapshot(s)) for s in batch.states],
        logs=[log_row(log_snapshot(r)) for r in batch.logs],
        heartbeats=[heartbeat_row(h.flow_run_id, h.at.timestamp()) for h in batch.heartbeats],
    )


def open_ingest_writer(backend: LocalBackend) -> IngestWriter:
    """An ingest writer to the database of the server's ``backend`` (sharing its
    SQLAlchemy engine, created when first needed)."""
    path = sqlite_file(backend.url)
    if path is not None:
        label = str(path)
    else:
        from sluice.store.database import database_label

        label = database_label(backend.url)
    return IngestWriter(
        backend.url,
        lambda: backend.engine,
        lock_timeout=backend.settings.store.lock_timeout,
        label=label,
    )


def merge(batches: list[RowBatch]) -> RowBatch:
    """One batch holding the rows of ``batches``, in their order.

    Upserted rows of the same id keep their order (the write sorts each group
    by id with a stable sort), so the batch handed in last wins, as it would
    in separate transactions.
    """
    if len(batches) == 1:
        return batches[0]
    merged = RowBatch()
    for name, _key in WRITE_ORDER:
        group = getattr(merged, name)
        for batch in batches:
            group.extend(getattr(batch, name))
    return merged


class IngestWriter:
    """Commit row batches to the database at ``url``.

    Args:
        url: the database URL (SQLite files get their own native connection).
        engine: gets the SQLAlchemy engine (only when needed: the SQLite path
            needs none until :meth:`append_missing`), which writes to any
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
            self._write_rows: Callable[[RowBatch], None] = self._sqlite.write_batch
        else:
            self._write_rows = _sqlalchemy_writer(engine(), lock_timeout, label)
        self._batcher = WriteBehindBatcher(
            self._write_batch,
            batch_size=1,
            flush_interval=0.5,
            max_pending=_MAX_PENDING,
            stall_timeout=lock_timeout,
            name="sluice-ingest-writer",
        )

    def write(self, rows: RowBatch) -> None:
        """Commit ``rows`` (with whatever other callers hand in meanwhile); returns once
        they are durable.

        Raises:
            StoreError: the write failed (the rows are kept and retried by the writer).
        """
        self._batcher.put((_ROWS, None, rows))
        self._batcher.flush()

    def append_missing(self, rows: RowBatch) -> int:
        """Commit ``rows`` that may be in the database already (a batch sent again):
        runs, flows and heartbeats as usual (upserts), and only the states and log
        lines the database does not hold yet; how many states and lines were new.

        Raises:
            StoreError: the write failed.
        """
        from sluice.store import dedup
        from sluice.store.database import run_write

        states, logs = rows.states, rows.logs
        rows.states, rows.logs = [], []
        # Everything handed in before (the first attempt, if this server
        # process got it) is committed before the look for what is held.
        self.write(rows)
        return run_write(
            self._engine(),
            lambda conn: dedup.append_missing(conn, states, logs),
            lock_timeout=self._lock_timeout,
            label=self._label,
        )

    def close(self) -> None:
        """Write what is left and close the connection.

        Raises:
            StoreError: some rows could not be written.
        """
        try:
            self._batcher.close()
        finally:
            if self._sqlite is not None:
                self._sqlite.close()

    def _write_batch(self, batch: WriteBatch) -> None:
        self._write_rows(merge(batch.appended.get(_ROWS, [])))


def _sqlalchemy_writer(
    engine: Engine, lock_timeout: float, label: str
) -> Callable[[RowBatch], None]:
    def write(rows: RowBatch) -> None:
        from sluice.store import writes
        from sluice.store.database import run_write

        run_write(
            engine,
            lambda conn: writes.write_batch(conn, rows),
            lock_timeout=lock_timeout,
            label=label,
        )

    return write
