"""A task run inside a transaction (see :mod:`sluice.transactions`).

A task run started where a transaction is in progress, or one whose task has
``on_commit``/``on_rollback`` hooks, gets a transaction of its own, a child of
the one in progress. When the run reaches its final state it is settled here:
a completed run is staged with its task's hooks and handed to the parent (or
committed at once without one); a run that did not complete rolls the parent
back. A run whose transaction is left to commit later is recorded ``Staged``
until it does (then ``Completed`` again): a resume after a crash runs it again
rather than replaying a result that never committed, as Prefect, which
persists a result only at commit, would. A staged run rolled back later is
recorded ``RolledBack``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sluice.states import Completed, RolledBack, Staged
from sluice.transactions import CommitMode, Transaction, TransactionState

if TYPE_CHECKING:
    from sluice.engine.task_call import TaskCall
    from sluice.states import State


def open_task_transaction(call: TaskCall) -> Transaction | None:
    """The run's own transaction, started under the one in progress at the call (None:
    no transaction in progress and no hooks to run)."""
    parent = call.transaction
    task = call.task
    if parent is None and not task.on_commit_hooks and not task.on_rollback_hooks:
        return None
    own = Transaction(logger=parent.logger if parent is not None else None)
    own.begin(parent)
    return own


def settle(call: TaskCall, own: Transaction | None, state: State) -> None:
    """Stage a completed run (or roll back on a failed one) in its transaction."""
    parent = call.transaction
    if own is None:
        if parent is not None and not state.is_completed():
            parent.rollback()  # failed before it started (an upstream failed)
        return
    if not state.is_completed():
        own.rollback()
        if parent is not None:
            parent.add_child(own)
            parent.rollback()
        return
    if state.name == "Cached":
        own.state = TransactionState.COMMITTED  # done before: nothing to commit or undo
    else:
        task = call.task
        own.stage(
            state, on_rollback_hooks=task.on_rollback_hooks, on_commit_hooks=task.on_commit_hooks
        )
        own.when_rolled_back(lambda: _mark_rolled_back(call))
    if own.commit_mode is CommitMode.EAGER:
        own.commit()
    if parent is not None:
        if own.is_staged():  # its parent decides later
            _mark_staged(call, own)
        parent.add_child(own)
    elif own.commit_mode is CommitMode.OFF:
        own.rollback()
    else:
        own.commit()


def _mark_staged(call: TaskCall, own: Transaction) -> None:
    """Record the run Staged until ``own`` commits, then Completed again."""
    result = call.record.result
    call.write(Staged(result_ref=result, message="Completed; waiting for its transaction"))

    def committed() -> None:
        call.write(Completed(result_ref=result, message="Committed with its transaction"))

    own.when_committed(committed)


def _mark_rolled_back(call: TaskCall) -> None:
    """Record that the run's effect was undone: it is no longer a result to replay or reuse."""

    call.write(RolledBack(message="Its transaction was rolled back (on_rollback hooks ran)"))
    call.line(logging.WARNING, "Rolled back with its transaction")
    flush = getattr(call.sink, "flush", None)
    if flush is not None:
        flush()  # a resume after a crash must not replay it
