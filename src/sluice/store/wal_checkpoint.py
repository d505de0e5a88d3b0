"""WAL checkpoints off the commit path.

SQLite in WAL mode appends commits to the ``-wal`` file and, by default, the
commit that takes it past 1,000 pages also copies them into the database
file and syncs it (a checkpoint): that commit takes milliseconds instead of
tens of microseconds, and every record waiting behind it waits too. The
embedded writer commits as soon as it is idle (the durability window is one
transaction), so it turns that off on its connection and has a
:class:`WalCheckpointer` run *passive* checkpoints from a thread of its own,
on its own connection. A passive checkpoint never blocks a writer: commits
go on while it copies what was committed before it began.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import suppress
from pathlib import Path

from sluice.store.retry import is_busy_error

#: records committed between two checkpoints (about SQLite's own 1,000 pages)
CHECKPOINT_EVERY = 4000


class WalCheckpointer:
    """Checkpoint the WAL database ``path`` in the background after enough commits.

    :meth:`committed` is called by the writer after each commit; the thread
    and its connection start with the first checkpoint. If a checkpoint
    fails (it should not: a passive one gives way to everyone), ``failed``
    turns true and the writer goes back to SQLite's own checkpoints.
    """

    def __init__(self, path: Path, *, every: int = CHECKPOINT_EVERY) -> None:
        self.path = path
        self._every = every
        self._since = 0
        self._bell = threading.Lock()
        self._bell.acquire()
        self._thread: threading.Thread | None = None
        self._stopping = False
        #: a checkpoint raised; the writer should checkpoint as SQLite does by default
        self.failed = False

    def committed(self, records: int) -> None:
        """Count records the writer committed; start a checkpoint when enough are."""
        self._since += records
        if self._since < self._every or self.failed:
            return
        self._since = 0
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name="sluice-wal-checkpoint", daemon=True
            )
            self._thread.start()
        with suppress(RuntimeError):  # one is asked for already
            self._bell.release()

    def close(self) -> None:
        """Stop the thread (after the checkpoint it may be running)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        with suppress(RuntimeError):
            self._bell.release()
        thread.join()
        self._thread = None

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        except sqlite3.Error:
            self.failed = True
            return
        try:
            while True:
                self._bell.acquire()
                if self._stopping:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    if not is_busy_error(exc):
                        self.failed = True
                        return
                    # Another connection is checkpointing: its work is ours.
        finally:
            conn.close()


__all__ = ["CHECKPOINT_EVERY", "WalCheckpointer"]
