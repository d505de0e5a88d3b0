"""Transactions: groups of task runs that succeed together or are undone together.

Example (the pattern Prefect documents)::

    from sluice import flow, task
    from sluice.transactions import get_transaction, transaction

    @task
    def write_file(path: str, contents: str) -> None:
        with open(path, "w") as f:
            f.write(contents)

    @write_file.on_rollback
    def delete_file(txn) -> None:
        os.unlink(txn.get("path"))

    @flow
    def pipeline(path: str) -> None:
        with transaction() as txn:
            txn.set("path", path)
            write_file(path, "hello")
            quality_check(path)        # raises: write_file's on_rollback runs

How it works:

* Every task run that starts inside ``with transaction():`` (called directly
  or submitted to a thread runner) gets a transaction of its own, a child of
  the block's, holding a copy of the block's values (``txn.get``/``txn.set``;
  ``get_transaction()`` inside the task returns it).
* A task run that completes is *staged* with its ``on_commit`` and
  ``on_rollback`` hooks (recorded ``Staged`` until the block commits: a resume
  after a crash runs it again, and it is no cache hit before); one that fails
  rolls the block back at once.
* Leaving the block normally commits it (``commit_mode=LAZY``, the default:
  the outermost transaction commits everything, then each staged task's
  ``on_commit`` hooks run). An exception leaving the block rolls it back:
  the staged task runs' ``on_rollback`` hooks run, the latest first, and each
  such task run ends in the state ``RolledBack`` (so a resume or a flow retry
  runs it again instead of replaying a result whose effect was undone, and
  it is never a cache hit). The exception goes on.
* Nested blocks: an inner block that commits hands its task runs to the outer
  one (``EAGER``: it commits on its own at once); an inner block that rolls
  back rolls the outer one back too. ``commit_mode=OFF``: the outermost block
  rolls back unless something committed it.
* ``transaction(key="...")``: on commit, a record of the key is written
  (:mod:`sluice.results.transaction_records`); a later block with the same key
  starts committed (``txn.is_committed()``), which makes a block run once.
  ``isolation_level=SERIALIZABLE`` holds a lock on the key from start to
  commit or rollback, across threads and processes of one machine.
* A task run outside any block with ``on_commit`` hooks commits alone as soon
  as it completes.

What Prefect does that Sluice does not: see ``docs/from-prefect.md``
(``store=`` is a folder here, not a ``ResultStore``; tasks running in other
processes do not join a block).
"""

from __future__ import annotations

import contextlib
import copy
import enum
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextvars import ContextVar, Token
from pathlib import Path
from typing import Any

from sluice.context import flow_run_var, task_run_var
from sluice.results.transaction_records import TransactionRecords
from sluice.settings import load_settings
from sluice.utilities.annotations import NotSet

#: a hook of a task's transaction: called with that transaction
TransactionHook = Callable[["Transaction"], Any]

_current: ContextVar[Transaction | None] = ContextVar("sluice_transaction", default=None)
_log = logging.getLogger("sluice.transactions")


class IsolationLevel(str, enum.Enum):
    """How keyed transactions with the same key see each other."""

    #: a committed record is seen; two blocks with one key may run at once
    READ_COMMITTED = "READ_COMMITTED"
    #: one block per key at a time (a lock on the key): the second sees the first's record
    SERIALIZABLE = "SERIALIZABLE"


class CommitMode(str, enum.Enum):
    """When a transaction commits."""

    #: on leaving its block, even inside another one
    EAGER = "EAGER"
    #: when the outermost transaction commits (the default)
    LAZY = "LAZY"
    #: never by itself: an outermost transaction in this mode rolls back at its end
    OFF = "OFF"


class TransactionState(str, enum.Enum):
    """Where a transaction is in its life."""

    PENDING = "PENDING"
    ACTIVE = "ACTIVE"
    STAGED = "STAGED"
    COMMITTED = "COMMITTED"
    ROLLED_BACK = "ROLLED_BACK"


class Transaction:
    """One transaction: a block of code (``with transaction():``) or a task run in one.

    Attributes:
        key: the key whose record makes the transaction count as done (None: no record).
        state: a :class:`TransactionState`.
        children: transactions (task runs, inner blocks) that committed into this one.
    """

    def __init__(
        self,
        key: str | None = None,
        commit_mode: CommitMode | None = None,
        isolation_level: IsolationLevel | None = None,
        overwrite: bool = False,
        write_on_commit: bool = True,
        logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
        store: str | os.PathLike[str] | None = None,
    ) -> None:
        self.key = key
        self.commit_mode = commit_mode
        self.isolation_level = isolation_level
        self.overwrite = overwrite
        self.write_on_commit = write_on_commit
        self.logger: logging.Logger | logging.LoggerAdapter[Any] = logger or _log
        self.state = TransactionState.PENDING
        self.children: list[Transaction] = []
        self.on_commit_hooks: list[TransactionHook] = []
        self.on_rollback_hooks: list[TransactionHook] = []
        self._store = store
        self._records: TransactionRecords | None = None
        self._values: dict[str, Any] = {}
        self._staged_value: Any = None
        self._parent: Transaction | None = None
        self._token: Token[Transaction | None] | None = None
        self._locked = False
        self._lock = threading.Lock()
        #: called once this transaction is rolled back after being staged, or
        #: committed (the engine records what became of the task run)
        self._after_rollback: list[Callable[[], None]] = []
        self._after_commit: list[Callable[[], None]] = []

    # -- values --------------------------------------------------------------------------
    def set(self, name: str, value: Any) -> None:
        """Keep ``value`` under ``name`` for the rest of this transaction (and the
        transactions of task runs started inside it from now on)."""
        self._values[name] = value

    def get(self, name: str, default: Any = NotSet) -> Any:
        """The value kept under ``name``, else ``default``.

        Raises:
            ValueError: no value under ``name`` and no default given.
        """
        if name in self._values:
            return self._values[name]
        if default is not NotSet:
            return default
        raise ValueError(f"Could not retrieve value for unknown key: {name}")

    # -- state -----------------------------------------------------------------------------
    def is_pending(self) -> bool:
        return self.state is TransactionState.PENDING

    def is_active(self) -> bool:
        return self.state is TransactionState.ACTIVE

    def is_staged(self) -> bool:
        return self.state is TransactionState.STAGED

    def is_committed(self) -> bool:
        return self.state is TransactionState.COMMITTED

    def is_rolled_back(self) -> bool:
        return self.state is TransactionState.ROLLED_BACK

    def get_parent(self) -> Transaction | None:
        """The transaction this one runs inside, if any."""
        return self._parent

    def add_child(self, transaction: Transaction) -> None:
        """Take responsibility for committing or rolling back ``transaction``."""
        with self._lock:
            self.children.append(transaction)

    # -- the block ---------------------------------------------------------------------------
    def __enter__(self) -> Transaction:
        if self._token is not None:
            raise RuntimeError("this transaction is already in use; open a new one")
        self.begin(_current.get())
        self._token = _current.set(self)
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        if self._token is None:
            raise RuntimeError("this transaction was left without being entered")
        if exc_type is not None:
            self.rollback()
            self._leave()
            return
        if self.commit_mode is CommitMode.EAGER:
            self.commit()
        if self._parent is not None:
            self._leave()
            return
        if self.commit_mode is CommitMode.OFF:
            self.rollback()  # nothing took responsibility for it: undone
        else:
            self.commit()
        self._leave()

    def begin(self, parent: Transaction | None) -> None:
        """Start under ``parent``: inherit its values, commit mode and isolation level,
        take the key's lock if serializable, and start committed if the key's record exists."""
        self._parent = parent
        if parent is not None:
            self._values = _copy_values(parent._values)
        if self.commit_mode is None:
            self.commit_mode = parent.commit_mode if parent else CommitMode.LAZY
        if self.isolation_level is None:
            self.isolation_level = (
                parent.isolation_level if parent else IsolationLevel.READ_COMMITTED
            )
        self.state = TransactionState.ACTIVE
        if self.key is None:
            return
        records = self._key_records()
        if self.isolation_level is IsolationLevel.SERIALIZABLE:
            records.acquire(self.key)
            self._locked = True
        if not self.overwrite and records.exists(self.key):
            self.state = TransactionState.COMMITTED

    def _leave(self) -> None:
        parent = self._parent
        if parent is not None:
            parent.add_child(self)
        if self._token is not None:
            _current.reset(self._token)
            self._token = None
        self._unlock()
        if parent is not None and self.state is TransactionState.ROLLED_BACK:
            parent.rollback()

    # -- stage, commit, roll back -------------------------------------------------------------
    def stage(
        self,
        value: Any,
        on_rollback_hooks: list[TransactionHook] | None = None,
        on_commit_hooks: list[TransactionHook] | None = None,
    ) -> None:
        """Hold ``value`` and hooks until this transaction commits or rolls back
        (nothing happens if it is already committed)."""
        if self.state is TransactionState.COMMITTED:
            return
        self._staged_value = value
        self.on_rollback_hooks.extend(on_rollback_hooks or ())
        self.on_commit_hooks.extend(on_commit_hooks or ())
        self.state = TransactionState.STAGED

    def read(self) -> Any:
        """The value staged in this transaction, if any."""
        return self._staged_value

    def commit(self) -> bool:
        """Commit the children, run the ``on_commit`` hooks, write the key's record.

        A hook that raises rolls the transaction back (its error is logged).
        Returns False if it was already committed or rolled back, or failed.
        """
        if self.state in (TransactionState.ROLLED_BACK, TransactionState.COMMITTED):
            self._unlock()
            return False
        try:
            for child in list(self.children):
                child.commit()
            for hook in self.on_commit_hooks:
                self._run_hook(hook, "commit")
            if self.key is not None and self.write_on_commit:
                self._key_records().write(self.key)
            for after in self._after_commit:
                after()
        except Exception:
            self.logger.exception("Transaction %r could not commit; rolling back", self.key)
            self.rollback()
            return False
        self.state = TransactionState.COMMITTED
        self._unlock()
        return True

    def rollback(self) -> bool:
        """Run the ``on_rollback`` hooks (latest first), then roll back the children
        (latest first). A hook that raises is logged; the others still run.
        Returns False if it was already committed or rolled back."""
        if self.state in (TransactionState.ROLLED_BACK, TransactionState.COMMITTED):
            return False
        staged = self.state is TransactionState.STAGED
        try:
            for hook in reversed(self.on_rollback_hooks):
                try:
                    self._run_hook(hook, "rollback")
                except Exception:
                    self.logger.exception("Rollback hook %s raised", _hook_name(hook))
            self.state = TransactionState.ROLLED_BACK
            for child in reversed(list(self.children)):
                child.rollback()
            if staged:
                for after in self._after_rollback:
                    after()
        finally:
            self._unlock()
        return True

    def when_rolled_back(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` if this transaction is rolled back after being staged."""
        self._after_rollback.append(callback)

    def when_committed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` when this transaction commits."""
        self._after_commit.append(callback)

    def _run_hook(self, hook: TransactionHook, kind: str) -> None:
        name = _hook_name(hook)
        self.logger.info("Running %s hook %s", kind, name)
        hook(self)
        self.logger.info("%s hook %s finished running successfully", kind.capitalize(), name)

    def _key_records(self) -> TransactionRecords:
        if self._records is None:
            if self._store is not None:
                self._records = TransactionRecords(Path(self._store))
            else:
                # The current run's settings, or this process's.
                ctx = flow_run_var.get()
                settings = ctx.settings if ctx is not None else load_settings()
                self._records = TransactionRecords.for_settings(settings)
        return self._records

    def _unlock(self) -> None:
        if self._locked and self.key is not None:
            self._locked = False
            self._key_records().release(self.key)

    def __repr__(self) -> str:
        return f"Transaction(key={self.key!r}, state={self.state.value})"


def get_transaction() -> Transaction | None:
    """The transaction in progress here (inside a task run in one: the task run's own), or None."""
    return _current.get()


def activate(txn: Transaction) -> Token[Transaction | None]:
    """Make ``txn`` the transaction in progress in this context (the engine does
    this for a task run's own transaction); undo with :func:`deactivate`."""
    return _current.set(txn)


def deactivate(token: Token[Transaction | None]) -> None:
    """Undo :func:`activate`."""
    _current.reset(token)


@contextlib.contextmanager
def transaction(
    key: str | None = None,
    store: str | os.PathLike[str] | None = None,
    commit_mode: CommitMode | None = None,
    isolation_level: IsolationLevel | None = None,
    overwrite: bool = False,
    write_on_commit: bool = True,
    logger: logging.Logger | logging.LoggerAdapter[Any] | None = None,
) -> Iterator[Transaction]:
    """Open a transaction around a block: its task runs commit together, or are rolled back.

    Args:
        key: write a record of this key on commit; a later transaction with
            the key starts committed (``txn.is_committed()``).
        store: the folder keeping key records and locks (default
            ``<result storage>/transactions``).
        commit_mode: ``LAZY`` (default, or the enclosing transaction's),
            ``EAGER`` or ``OFF`` (see :class:`CommitMode`).
        isolation_level: ``READ_COMMITTED`` (default) or ``SERIALIZABLE``
            (a lock on ``key`` for the whole block).
        overwrite: start even if ``key`` has a record (and write it again).
        write_on_commit: write ``key``'s record on commit.
        logger: where hook lines go (default: the run's logger, else
            ``sluice.transactions``).
    """
    if logger is None:
        task_ctx = task_run_var.get()
        flow_ctx = flow_run_var.get()
        if task_ctx is not None:
            logger = task_ctx.get_logger()
        elif flow_ctx is not None:
            logger = flow_ctx.logger
    with Transaction(
        key=key,
        commit_mode=commit_mode,
        isolation_level=isolation_level,
        overwrite=overwrite,
        write_on_commit=write_on_commit,
        logger=logger,
        store=store,
    ) as txn:
        yield txn


def _copy_values(values: dict[str, Any]) -> dict[str, Any]:
    # A child's changes must not show in its parent (as in Prefect); values that
    # cannot be deep-copied (locks, clients) are shared instead.
    try:
        return copy.deepcopy(values)
    except Exception:
        return dict(values)


def _hook_name(hook: Any) -> str:
    name = getattr(hook, "__name__", None) or getattr(getattr(hook, "func", None), "__name__", None)
    return repr(name) if name else repr(hook)


__all__ = [
    "CommitMode",
    "IsolationLevel",
    "Transaction",
    "TransactionState",
    "get_transaction",
    "transaction",
]
