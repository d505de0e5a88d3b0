"""Where keyed transactions leave their mark: one small file per committed key, and
a lock file per key for ``SERIALIZABLE`` transactions.

``transaction(key="daily-load")`` writes ``<folder>/<digest of the key>.json``
when it commits; a later transaction with that key finds it and counts as
committed (``txn.is_committed()``), which is how a block runs once. The folder
is ``<result storage>/transactions`` (``$SLUICE_HOME/storage/transactions`` by
default), or the ``store=`` folder given to ``transaction``. The file is written
to a temporary name and renamed, so a crash never leaves half a record.

Locks are ``flock`` locks on ``<digest>.lock``: they hold between threads and
processes of one machine, and the system drops them when their process dies.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import tempfile
import threading
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from sluice.settings import Settings

try:
    import fcntl
except ImportError:  # pragma: no cover - not on Windows
    fcntl = None  # type: ignore[assignment]


class TransactionRecords:
    """The committed-key records and key locks under one folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._held: dict[str, IO[bytes]] = {}
        self._guard = threading.Lock()

    @classmethod
    def for_settings(cls, settings: Settings) -> TransactionRecords:
        """The records kept under ``settings``' result storage (or its home)."""
        root = Path(settings.results.storage).expanduser() if settings.results.storage else None
        return cls((root or settings.home / "storage") / "transactions")

    def _path(self, key: str, suffix: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        return self.folder / f"{digest}{suffix}"

    def exists(self, key: str) -> bool:
        """True when a transaction with ``key`` committed here."""
        return self._path(key, ".json").is_file()

    def write(self, key: str) -> None:
        """Record that the transaction ``key`` committed (replacing an older record)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        body = {"key": key, "committed": _dt.datetime.now(_dt.timezone.utc).isoformat()}
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(body, handle)
            os.replace(tmp, self._path(key, ".json"))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def acquire(self, key: str) -> None:
        """Wait until this caller alone holds the lock of ``key``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        handle = open(self._path(key, ".lock"), "ab")  # noqa: SIM115 (held until release)
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        with self._guard:
            self._held[key] = handle

    def release(self, key: str) -> None:
        """Let go of the lock of ``key`` if this object holds it."""
        with self._guard:
            handle = self._held.pop(key, None)
        if handle is not None:
            if fcntl is not None:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            handle.close()
