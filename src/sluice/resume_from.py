"""Resuming a deployment's run from a chosen task: the key, and where the request is kept.

``resume_flow_run(run_id, from_task="NAME" | "NAME:INDEX")`` queues the run
as Scheduled ``AwaitingResume`` with ``{"from_task": key}`` in that state's
``details``. The run may be claimed, handed back and claimed again before it
starts; whichever worker finally executes it finds the request in the run's
state history (:func:`pending_from_task`) and re-executes that task and every
later call instead of replaying them.

The key's grammar is also that of ``sluice flow-run resume --from``
(:func:`sluice.engine.journal.parse_from_key` uses :func:`parse_from_task`):
``NAME`` is every call of the task, ``NAME:INDEX`` its call number INDEX (0 is
the first) and later ones.
A task name holding ``:`` therefore needs the index.
"""

from __future__ import annotations

from collections.abc import Sequence

from sluice.errors import InvalidInputError
from sluice.schemas import AWAITING_RESUME_STATE, StateRecord
from sluice.states import TERMINAL_TYPES, StateType

#: the key of the AwaitingResume state's ``details`` that holds the task to resume from
FROM_TASK_DETAIL = "from_task"

#: an index past this cannot be a call position (and overflows a BIGINT)
_MAX_INDEX_DIGITS = 18


def parse_from_task(text: str) -> tuple[str, int | None]:
    """``(task name, call index or None)`` of a ``from_task`` key.

    Raises:
        InvalidInputError: (a ValueError, field ``from_task``) an empty name, an
            index that is not a number, a NUL character (the message starts with
            ``from_task:``).
    """
    name, sep, index = text.rpartition(":")
    if not sep:
        name, index = text, ""
    elif not index.isdigit() or len(index) > _MAX_INDEX_DIGITS:
        raise refused_from_task(
            f"expected TASK_NAME or TASK_NAME:INDEX (INDEX a call number, "
            f"0 for the first), got {text!r}"
        )
    if not name.strip():
        raise refused_from_task(f"the task name is empty in {text!r}")
    if "\x00" in text:
        raise refused_from_task("holds a NUL character")
    return name, int(index) if index else None


def refused_from_task(why: str) -> InvalidInputError:
    """The error refusing a ``from_task`` key, saying ``why``."""
    return InvalidInputError(f"{FROM_TASK_DETAIL}: {why}", field=FROM_TASK_DETAIL)


def pending_from_task(states: Sequence[StateRecord]) -> str | None:
    """The ``from_task`` of the resume a run is waiting to start, from its state history
    (oldest first); None for a plain resume or a run not resumed.

    Only the resume since the run last ran counts: claims and hand-backs
    (Pending, Scheduled) after the AwaitingResume state are skipped, a
    Running or final state ends the search.
    """
    for state in reversed(states):
        if state.kind != "flow":
            continue
        if state.name == AWAITING_RESUME_STATE:
            value = (state.details or {}).get(FROM_TASK_DETAIL)
            return value if isinstance(value, str) else None
        if state.type is StateType.RUNNING or state.type in TERMINAL_TYPES:
            return None
    return None
