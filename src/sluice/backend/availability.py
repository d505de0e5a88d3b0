"""Whether a failure means the store is away for now, in either mode."""

from __future__ import annotations

from sluice.errors import ServerUnavailableError
from sluice.store.retry import is_unavailable


def store_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` says the store cannot be reached for now (the server does not
    answer, the database is down, its disk is full): asking again later can work.
    False when the store answered and refused, or lacks what was asked."""
    return isinstance(exc, ServerUnavailableError) or is_unavailable(exc)
