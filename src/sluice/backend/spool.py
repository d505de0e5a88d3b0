"""The spool: records the embedded writer could not write, kept in a local file.

When the database stays unreachable (or its disk full) for longer than
``store.retry_timeout``, the writer hands each batch to a :class:`Spool`
instead of dropping it. Whatever the spool holds is written back, in order
and before anything newer, as soon as the database answers again; if the
process ends first, the next Sluice process that opens the same store (with
the same ``SLUICE_HOME``) writes it (:func:`replay_spools`).

One file per process and outage::

    $SLUICE_HOME/spool/<store key>/<UTC time>-<pid>-<n>.jsonl

``<store key>`` is a hash of the database's name (its path, or its URL
without password), so stores sharing a home keep apart; ``<n>`` tells apart
two files one process starts within a second. The file holds JSON
lines: a header ``{"sluice_spool": 1, "database": ..., "host": ..., "pid": ...,
"created": <epoch s>}``, then one line per batch, ``{"flows": [row, ...],
"flow_runs": [...], "task_runs": [...], "states": [...], "logs": [...],
"heartbeats": [...], "fences": [...]}`` (empty groups left out): a batch's
write groups (:mod:`sluice.store.write_groups`), each row an object of the
column values the store writes (text, numbers, null), by column name, so a
file stays readable after a column is added; ``fences`` are the
attempts the writing process held, so a replay of a run that a later attempt
took over stores nothing of it (see docs/architecture.md, "Liveness and
fencing"). Each line is fsynced before the
writer counts its records as kept; a last line cut short by a crash was
never acknowledged and is ignored.

Replaying is idempotent: each batch goes through the store's resent-batch
write (:func:`sluice.store.dedup.write_resent`, the path the server uses for
an ingest request sent twice): runs are upserts, heartbeats only move
forward, and a state or log line already stored is not stored again. A file
is deleted once replayed, so replaying it twice (a crash between the last
commit and the deletion) or replaying records that also reached the
database is harmless.

The owner holds an exclusive ``flock`` on its file while it lives; another
process replays only files nobody holds, and only while they are still
linked, so it never replays a file its owner is still appending to or has
already written back.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path

from sluice.backend.batcher import WriteBatch
from sluice.store.write_groups import (
    FENCES,
    RECORD_GROUPS,
    ValueGroup,
    group_rows,
    group_values,
)

try:  # pragma: no cover - every supported POSIX system has it
    import fcntl
except ImportError:  # pragma: no cover - Windows: no locking between processes
    fcntl = None  # type: ignore[assignment]

#: the file format's version, in every header
FORMAT = 1
SUFFIX = ".jsonl"
#: a file whose content the store refuses is renamed with this suffix and kept
REJECTED_SUFFIX = ".rejected"
#: the groups of a batch line, in write order (fences, the writer's attempts, first)
GROUPS = (FENCES, *RECORD_GROUPS)

#: writes one batch's groups that may be stored already, in one transaction
ResentWriter = Callable[[list[ValueGroup]], None]


def spool_dir(home: Path, database: str) -> Path:
    """The folder of the spool files of the store named ``database`` under ``home``."""
    key = hashlib.sha256(database.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return home / "spool" / key


def _encode(groups: list[ValueGroup]) -> bytes:
    line = {name: group_rows(name, values) for name, values in groups if values}
    # ASCII escapes keep lone surrogates (which UTF-8 cannot hold) intact.
    return (json.dumps(line, separators=(",", ":")) + "\n").encode("ascii")


def _decode(line: bytes) -> list[ValueGroup]:
    data = json.loads(line)
    if not isinstance(data, dict) or not set(data) <= set(GROUPS):
        raise ValueError(f"not a batch of rows: {line[:80]!r}")
    return [(name, group_values(name, data[name])) for name in GROUPS if data.get(name)]


class Spool:
    """The records one process keeps while its database is unreachable (a :class:`Fallback`).

    Args:
        directory: where the file goes (:func:`spool_dir`); created on the first keep.
        database: the database's name, for the header and messages.
        groups_of: the write groups of a writer batch (with its fences).
        write_resent: writes rows that may be stored already (one transaction).
    """

    def __init__(
        self,
        directory: Path,
        database: str,
        groups_of: Callable[[WriteBatch], list[ValueGroup]],
        write_resent: ResentWriter,
    ) -> None:
        self.directory = directory
        self.database = database
        self._groups_of = groups_of
        self._write_resent = write_resent
        self.path: Path | None = None
        self._fd: int | None = None
        self._size = 0
        #: records in the file not written back yet
        self.records = 0

    # -- the Fallback protocol -----------------------------------------------------

    def keep(self, batch: WriteBatch, cause: BaseException | None = None) -> None:
        """Append ``batch`` to the file and fsync it (``cause``: why the database did
        not take it, for the message the first batch prints).

        Raises:
            OSError: the file cannot be written (a full disk); nothing of the
                batch is left in it.
        """
        line = _encode(self._groups_of(batch))
        fd = self._open()
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(f"short write to {self.path} ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError:
            # Cut a partial line off: the file must hold whole batches only.
            with suppress(OSError):
                os.ftruncate(fd, self._size)
            raise
        self._size += len(line)
        first = self.records == 0
        self.records += batch.records()
        if first:
            why = f" ({cause})" if cause is not None else ""
            print(
                f"sluice: the database at {self.database} cannot be written{why}; records "
                f"are kept in {self.path} and written to it once it answers (or by the next "
                "Sluice process that opens it)",
                file=sys.stderr,
            )

    def restore(self) -> None:
        """Write the file's batches to the database, then delete it.

        Raises:
            Exception: the database failed; the file stays as it is.
        """
        if self._fd is None or self.path is None:
            return
        path, fd = self.path, self._fd
        with open(path, "rb") as fh:
            for groups in _batches(fh.read(), path):
                self._write_resent(groups)
        kept = self.records
        self._forget(path, fd)
        print(
            f"sluice: {self.database} answers again; wrote to it the {kept} records kept in {path}",
            file=sys.stderr,
        )

    def describe(self) -> str:
        """What the file holds, for messages (empty when nothing is kept)."""
        if not self.records or self.path is None:
            return ""
        return (
            f"{self.records} records are kept in {self.path}; they are written to "
            f"{self.database} the next time a Sluice process opens it"
        )

    # -- the file ----------------------------------------------------------------------

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        self.directory.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        path = self.directory / f"{stamp}-{os.getpid()}-{time.monotonic_ns() % 10**6}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            header = {
                "sluice_spool": FORMAT,
                "database": self.database,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "created": time.time(),
            }
            data = (json.dumps(header) + "\n").encode("ascii")
            os.write(fd, data)
            os.fsync(fd)
            _fsync_dir(self.directory)
        except BaseException:
            os.close(fd)
            with suppress(OSError):
                path.unlink()
            raise
        self.path, self._fd, self._size = path, fd, len(data)
        return fd

    def _forget(self, path: Path, fd: int) -> None:
        with suppress(FileNotFoundError):
            path.unlink()
        os.close(fd)
        self.path, self._fd, self._size, self.records = None, None, 0, 0

    def close(self) -> None:
        """Release the file (it stays, for the next process to replay)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _batches(data: bytes, path: Path) -> Iterator[list[ValueGroup]]:
    """The batches of a spool file's content (header checked, a cut-off last line ignored).

    Raises:
        ValueError: the content is not a spool file's.
    """
    lines = data.split(b"\n")
    # After the last newline: empty, or a line whose append never completed.
    lines.pop()
    if not lines:
        return
    header = json.loads(lines[0])
    if not isinstance(header, dict) or header.get("sluice_spool") != FORMAT:
        raise ValueError(f"{path} is not a Sluice spool file (format {FORMAT})")
    for line in lines[1:]:
        yield _decode(line)


# -- replaying what other processes left --------------------------------------------------


def replay_spools(
    directory: Path,
    database: str,
    write_resent: ResentWriter,
    outage: Callable[[BaseException], bool],
) -> None:
    """Write every spool file in ``directory`` that no live process holds, oldest first.

    A file is deleted once written. While the database is still away it stays
    (with a message); one whose content the database refuses is renamed
    ``*.rejected`` and kept, with a message naming it.
    """
    try:
        names = sorted(entry.name for entry in os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        if name.endswith(SUFFIX):
            _replay_file(directory / name, database, write_resent, outage)


def _replay_file(
    path: Path,
    database: str,
    write_resent: ResentWriter,
    outage: Callable[[BaseException], bool],
) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return  # replayed meanwhile by its owner or another process
    try:
        if not _hold(fd, path):
            return
        records = 0
        try:
            with os.fdopen(os.dup(fd), "rb") as fh:
                for groups in _batches(fh.read(), path):
                    write_resent(groups)
                    records += _count(groups)
        except Exception as exc:
            _report_failed(path, database, exc, outage(exc))
            return
        path.unlink(missing_ok=True)
        print(
            f"sluice: wrote to {database} the {records} records kept in {path} while it "
            "was unreachable",
            file=sys.stderr,
        )
    finally:
        os.close(fd)


def _hold(fd: int, path: Path) -> bool:
    """Lock ``fd``'s file for replaying: False when a live process holds it, or it was
    deleted (written back) since it was opened."""
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _report_failed(path: Path, database: str, exc: BaseException, outage: bool) -> None:
    if outage:
        print(
            f"sluice: the records kept in {path} could not be written to {database} yet "
            f"({exc}); they stay there for the next Sluice process that opens it",
            file=sys.stderr,
        )
        return
    rejected = path.with_name(path.name + REJECTED_SUFFIX)
    with suppress(OSError):
        path.rename(rejected)
    print(
        f"sluice: {database} refused the records kept in {path} ({exc!r}); the file is "
        f"kept as {rejected} and not replayed again",
        file=sys.stderr,
    )


def _count(groups: list[ValueGroup]) -> int:
    return sum(len(values) for name, values in groups if name != FENCES)


__all__ = ["Spool", "replay_spools", "spool_dir"]
