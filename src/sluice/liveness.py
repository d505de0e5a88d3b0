"""Pure rules of liveness and fencing: is a run's process alive, which attempt wins.

No I/O and no clock here: every "now" is a parameter. The store applies
:func:`lapse_threshold` with the database's clock (:mod:`sluice.store.clock`),
observers apply :func:`process_gone` to what ``/proc`` says
(:mod:`sluice.utilities.process_identity`), the store's write path applies
:func:`is_superseded` to the attempt each writer holds, and the engine applies
:func:`lease_expired` to its monotonic clock before starting a task. See
docs/architecture.md, "Liveness and fencing".
"""

from __future__ import annotations

from dataclasses import dataclass


def lapse_threshold(now: float, timeout: float) -> float:
    """Runs (or workers) whose last sign of life is older than this are presumed dead.

    Args:
        now: the current time on the clock the signs of life were stamped with
            (the database's), epoch seconds.
        timeout: seconds of silence that count as death.
    """
    return now - timeout


def is_lapsed(last_seen: float, now: float, timeout: float) -> bool:
    """Whether a sign of life at ``last_seen`` is too old at ``now`` (one clock)."""
    return last_seen < lapse_threshold(now, timeout)


@dataclass(frozen=True)
class ProcessIdentity:
    """Who a process is, precisely enough to tell it from a later one with its pid.

    Attributes:
        host_id: the machine boot and PID namespace it runs in (pids mean
            something only there).
        pid: its process id.
        started: its start time, in clock ticks since boot (a recycled pid
            belongs to a process that started later).
    """

    host_id: str
    pid: int
    started: int


def process_gone(recorded: ProcessIdentity, here: str, started_now: int | None) -> bool:
    """Whether the process ``recorded`` is known to be gone, looking from host ``here``.

    Args:
        recorded: the identity a run recorded for its process.
        here: the observer's host id.
        started_now: the start time of the process now holding ``recorded.pid``
            on the observer's host (``None``: no such process).

    Only an observer on the same host (and PID namespace) can tell; from
    anywhere else the answer is False, and the heartbeat's lapse decides.
    """
    if recorded.host_id != here:
        return False
    return started_now != recorded.started


def is_superseded(held: int, stored: int | None) -> bool:
    """Whether a writer holding attempt ``held`` was superseded by the run's ``stored`` one.

    A run whose row does not exist yet (``None``), or still holds this attempt,
    belongs to the writer. A later attempt always wins: numbers only grow.
    """
    return stored is not None and stored > held


def next_attempt(stored: int | None) -> int:
    """The attempt number a new execution of a run takes."""
    return (stored or 0) + 1


def lease_window(heartbeat_timeout: float) -> float:
    """How long after its last confirmed write an attempt may start work unconfirmed.

    Others presume a run dead once its heartbeat is ``heartbeat_timeout`` old;
    half that leaves room for a slow commit and for clock rate differences.
    """
    return heartbeat_timeout / 2


def lease_expired(confirmed_at: float, now: float, window: float) -> bool:
    """Whether an attempt last confirmed at ``confirmed_at`` must confirm again at ``now``
    (both on the process's monotonic clock) before it starts more work."""
    return now - confirmed_at >= window


__all__ = [
    "ProcessIdentity",
    "is_lapsed",
    "is_superseded",
    "lapse_threshold",
    "lease_expired",
    "lease_window",
    "next_attempt",
    "process_gone",
]
