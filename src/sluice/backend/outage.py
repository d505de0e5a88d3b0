"""What the store writer does about failures: pure rules, the time passed in.

A *transient* failure (the store is away: no connection, a full disk) is
waited out for ``retry_timeout`` seconds from the first one. After that,
records go to the writer's fallback (the embedded store's spool file) if it
has one; without one (client mode) flushes give up and say what is pending,
while the writer keeps trying. Any other failure surfaces at once. At close,
the writer stops trying only when nothing better can happen.
"""

from __future__ import annotations

from dataclasses import dataclass

#: attempts the writer makes at closing time before giving up on a failing batch
CLOSING_ATTEMPTS = 3
#: longest pause between two attempts to write a failing batch, in seconds
MAX_BACKOFF = 1.0
#: longest pause between two attempts to write back what the fallback keeps
MAX_PROBE_DELAY = 2.0


def next_delay(previous: float, first: float, ceiling: float) -> float:
    """The pause after ``previous``: doubling from ``first``, at most ``ceiling``."""
    return min(max(previous * 2, first), ceiling)


@dataclass
class OutageRules:
    """The writer's failure state, and when it stops waiting for the store.

    Args:
        retry_timeout: seconds a transient failure is waited out.
        has_fallback: the writer can keep records aside durably.
    """

    retry_timeout: float
    has_fallback: bool
    #: when the current outage began (monotonic seconds; None while the store answers)
    since: float | None = None
    #: attempts that failed since the writer began closing
    closing_attempts: int = 0

    def failed(self, now: float, transient: bool, stopping: bool) -> None:
        """Note a failed attempt to write a batch."""
        if stopping:
            self.closing_attempts += 1
        if transient and self.since is None:
            self.since = now

    def recovered(self) -> None:
        """Note a batch written: the outage, if any, is over."""
        self.since = None

    def seconds(self, now: float) -> float:
        """How long the current outage has lasted (0 when there is none)."""
        return 0.0 if self.since is None else now - self.since

    def keep_aside(self, now: float, transient: bool, stopping: bool) -> bool:
        """After a failed attempt: hand the batch to the fallback now?

        Yes once an outage has lasted ``retry_timeout``; and at close, after
        the last attempts, even for other failures (nothing is dropped: what
        the store refuses is set aside again when written back).
        """
        if not self.has_fallback:
            return False
        if transient:
            return self.seconds(now) >= self.retry_timeout
        return stopping and self.closing_attempts >= CLOSING_ATTEMPTS

    def flush_gives_up(self, waited: float, transient: bool) -> bool:
        """Does a flush that has waited ``waited`` s on a failing writer raise now?

        At once for failures that are not transient; for an outage only
        without a fallback (with one, the writer answers the flush by keeping
        the records aside), after ``retry_timeout``.
        """
        if not transient:
            return True
        return not self.has_fallback and waited >= self.retry_timeout

    def give_up_at_close(
        self, now: float, stop_started: float, transient: bool, keep_failed: bool
    ) -> bool:
        """At close, after a failed attempt: stop trying (what is left is lost)?

        Not before :data:`CLOSING_ATTEMPTS` attempts. Then at once for a failure
        that is not an outage or when the fallback failed too; never while a
        fallback can still take the batch (it does after ``retry_timeout``);
        without one, ``retry_timeout`` after close began.
        """
        if self.closing_attempts < CLOSING_ATTEMPTS:
            return False
        if not transient or keep_failed:
            return True
        if self.has_fallback:
            return False
        return now - stop_started >= self.retry_timeout


__all__ = ["CLOSING_ATTEMPTS", "MAX_BACKOFF", "MAX_PROBE_DELAY", "OutageRules", "next_delay"]
