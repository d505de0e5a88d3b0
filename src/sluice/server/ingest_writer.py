"""The server's ingest writer: each ingest request's rows committed in one transaction.

The API server commits each ingest request's records in one transaction on
the request's own worker thread: handing them to a writer
thread would add two thread wake-ups per request, which on a busy machine
cost more than the write itself. Requests from several clients take turns
(SQLite has one writer at a time; the store's connection lock and busy
retries order them) or run side by side (PostgreSQL).

A batch's records become write groups as the embedded writer's do
(:func:`groups_of`: snapshots, then :func:`~sluice.store.write_groups.write_groups`).
SQLite is written through the store's native path
(:class:`~sluice.store.sqlite_native.SqliteStore`, on its own connection),
binding the value tuples as they are; PostgreSQL through the SQLAlchemy
statements of :mod:`sluice.store.writes`, on the engine it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from sluice.api_schemas import IngestBatch
from sluice.store.sqlite_native import SqliteStore, sqlite_file
from sluice.store.write_groups import (
    CODECS,
    GROUP_NAMES,
    RecordKind,
    ValueGroup,
    write_groups,
)

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from sluice.backend.local import LocalBackend


#: (kind, its section of an IngestBatch, the kind's snapshot), in write order
_SECTIONS = tuple((kind, GROUP_NAMES[kind], CODECS[kind].snapshot) for kind in CODECS)


def groups_of(batch: IngestBatch) -> list[ValueGroup]:
    """The write groups of an ingest batch: its records snapshotted and converted as
    the embedded writer's are (:func:`~sluice.store.write_groups.write_groups`), each
    as it comes."""
    snapshots: dict[int, Iterable[Any]] = {
        kind: map(snapshot, getattr(batch, section)) for kind, section, snapshot in _SECTIONS
    }
    snapshots[RecordKind.HEARTBEAT] = [h.flow_run_id for h in batch.heartbeats]
    return write_groups(snapshots, [(f.flow_run_id, f.attempt) for f in batch.fences])


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
            self._write_groups = _sqlalchemy_writer(engine(), lock_timeout, label)

    def write(self, batch: IngestBatch) -> set[str]:
        """Commit ``batch`` in one transaction (retried while the database is busy); the
        fenced runs a later attempt took over (their records are refused).

        Raises:
            StoreError: the write failed; nothing of ``batch`` is stored.
        """
        groups = groups_of(batch)
        if self._sqlite is not None:
            return self._sqlite.write_values(groups)
        return self._write_groups(groups)

    def write_resent(self, groups: Sequence[ValueGroup]) -> tuple[int, set[str]]:
        """Commit ``groups`` that may be in the database already (a batch sent again),
        in one transaction: runs, flows and heartbeats as usual (upserts), and only
        the states and log lines the database does not hold yet; how many states
        and lines were new, and the fenced runs a later attempt took over.

        Raises:
            StoreError: the write failed; nothing of ``groups`` is stored.
        """
        from sluice.store import dedup
        from sluice.store.database import run_write

        return run_write(
            self._engine(),
            lambda conn: dedup.write_resent(conn, groups),
            lock_timeout=self._lock_timeout,
            label=self._label,
        )

    def close(self) -> None:
        """Close the connection (every write has returned: nothing is pending)."""
        if self._sqlite is not None:
            self._sqlite.close()


def _sqlalchemy_writer(
    engine: Engine, lock_timeout: float, label: str
) -> Callable[[Sequence[ValueGroup]], set[str]]:
    def write(groups: Sequence[ValueGroup]) -> set[str]:
        from sluice.store import writes
        from sluice.store.database import run_write

        return run_write(
            engine,
            lambda conn: writes.write_batch(conn, groups),
            lock_timeout=lock_timeout,
            label=label,
        )

    return write
