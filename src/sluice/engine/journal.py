"""The journal: completed task runs of a flow run, replayed instead of re-run.

Each task call has a position (``task_key``: task name, call index, map index)
and a fingerprint of its inputs. When a flow run is resumed or retried, a call
whose position holds a completed run with the same fingerprint returns that
run's stored result without calling the function.

Replaying stops for good at the first *divergence*: a position whose stored
inputs differ from this call's (the code or data changed), a position whose
stored result is refused (not this record's, see :mod:`sluice.results.signing`),
or the position named by ``--from``. From there on every call executes,
because results past a divergence may depend on what changed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from sluice.resume_from import parse_from_task
from sluice.schemas import TaskRunRecord
from sluice.states import STAGED_STATE, StateType


def _final(entry: TaskRunRecord) -> bool:
    """A completed run whose result counts: not one still staged in an open transaction."""
    return entry.state_type is StateType.COMPLETED and entry.state_name != STAGED_STATE


def parse_from_key(text: str) -> tuple[str, int | None]:
    """``TASK`` or ``TASK:INDEX`` (as given to ``resume --from``): the grammar of
    :func:`sluice.resume_from.parse_from_task`, with messages naming ``--from``.

    Raises:
        ValueError: an empty name, or an index that is not a non-negative number.
    """
    try:
        return parse_from_task(text)
    except ValueError as exc:
        raise ValueError("--from: " + str(exc).removeprefix("from_task: ")) from None


class Journal:
    """Replay decisions for one flow run attempt.

    Args:
        entries: completed task runs of the flow run.
        from_task: re-execute from this task (``name`` or ``name:call_index``) onwards.
        warn: called with a message when replaying stops because inputs diverged.
    """

    def __init__(
        self,
        entries: Iterable[TaskRunRecord] = (),
        from_task: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self._entries = {e.task_key: e for e in entries if e.result is not None}
        self._from = parse_from_key(from_task) if from_task else None
        self._warn = warn
        self._lock = threading.Lock()
        self.stopped = not self._entries
        self.replayed = 0

    def restart(self, from_task: str | None = None) -> Journal:
        """A journal for the next attempt: everything recorded so far, replaying again."""
        return Journal(self._entries.values(), from_task, self._warn)

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(
        self,
        task_name: str,
        call_index: int,
        task_key: str,
        input_hash: str | None,
        refusal: Callable[[TaskRunRecord], str | None] | None = None,
    ) -> TaskRunRecord | None:
        """The entry to replay for this call, or None if it must execute.

        Args:
            refusal: why an entry's stored result cannot be used (None: it can).
        """
        if self.stopped:
            return None
        with self._lock:
            if self.stopped:
                return None
            if self._from is not None and self._reaches_from(task_name, call_index):
                self.stopped = True
                return None
            entry = self._entries.get(task_key)
            if entry is None or not _final(entry):
                return None  # never ran to completion, rolled back, or never committed
            if entry.input_hash is None or entry.input_hash != input_hash:
                self.stopped = True
                if self._warn is not None:
                    self._warn(
                        f"Task {task_key!r} was called with other inputs than in the journal "
                        "(the code or data changed): it and every later call will execute "
                        "instead of being replayed"
                    )
                return None
            problem = refusal(entry) if refusal is not None else None
            if problem is not None:
                self.stopped = True
                if self._warn is not None:
                    self._warn(
                        f"Task {task_key!r} is not replayed: {problem}. It and every later "
                        "call will execute"
                    )
                return None
            self.replayed += 1
            return entry

    def _reaches_from(self, task_name: str, call_index: int) -> bool:
        assert self._from is not None
        name, index = self._from
        return task_name == name and (index is None or call_index >= index)

    def record(self, record: TaskRunRecord) -> None:
        """Remember a call completed in this attempt (for the flow's own retries)."""
        if record.result is None:
            return
        with self._lock:
            self._entries[record.task_key] = record
