"""How runs put states and exceptions into words: log lines and state details."""

from __future__ import annotations

import traceback
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluice.states import State


def describe(exc: BaseException) -> str:
    """``Type: message`` (or just the type when the message is empty)."""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def state_label(state: State) -> str:
    """``Name('message')`` or ``Name()``, as "Finished in state ..." lines show a state."""
    return f"{state.name}({state.message!r})" if state.message else f"{state.name}()"


def exception_details(exc: BaseException | None, delay: float | None = None) -> dict[str, Any]:
    """The details a state record keeps about an exception (and a retry delay)."""
    details: dict[str, Any] = {}
    if exc is not None:
        details["exception_type"] = f"{type(exc).__module__}.{type(exc).__qualname__}"
        details["traceback"] = "".join(
            traceback.format_exception(type(exc), exc, exc.__traceback__)
        )
    if delay is not None:
        details["retry_delay_seconds"] = delay
    return details
