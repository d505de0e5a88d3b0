"""Refusals across HTTP: an error's type and fields in the answer, rebuilt by the client.

The server answers an operation's refusal with the human ``detail`` the UI
shows and, beside it, ``"error": {"type": "ConflictError", "fields": {"kind":
"work pool", "key": "p", "reason": "..."}}``: the error's class and the
arguments it was made with (its ``__reduce__``, named by its constructor).
The client makes the same exception again, so a caller catches the same
error with the same attributes in embedded and client mode, without reading
messages.
"""

from __future__ import annotations

import inspect
import typing
from typing import Any

from sluice.errors import (
    AmbiguousIdError,
    BatchTooLarge,
    ConflictError,
    InvalidInputError,
    InvalidRecords,
    NotFoundError,
    ParameterValidationError,
    ScheduleError,
    SluiceError,
    TransitionRefused,
)

#: the errors an operation refuses a request with, which cross HTTP by type
REFUSALS: dict[str, type[SluiceError]] = {
    cls.__name__: cls
    for cls in (
        NotFoundError,
        AmbiguousIdError,
        ConflictError,
        TransitionRefused,
        ParameterValidationError,
        InvalidInputError,
        ScheduleError,
        InvalidRecords,
        BatchTooLarge,
    )
}


def refusal_of(exc: BaseException) -> dict[str, Any] | None:
    """``{"type", "fields"}`` of an error the client can rebuild; None for others."""
    cls = type(exc)
    if REFUSALS.get(cls.__name__) is not cls:
        return None
    names = _argument_names(cls)
    if names is None:
        return {"type": cls.__name__, "fields": {"message": str(exc)}}
    args = typing.cast(tuple[Any, ...], exc.__reduce__())[1]
    return {"type": cls.__name__, "fields": dict(zip(names, args, strict=True))}


def rebuilt(refusal: Any) -> SluiceError | None:
    """The error a server's ``"error"`` entry stands for; None if it names none this
    client knows (an older or newer server)."""
    if not isinstance(refusal, dict):
        return None
    cls = REFUSALS.get(str(refusal.get("type")))
    fields = refusal.get("fields")
    if cls is None or not isinstance(fields, dict):
        return None
    try:
        if _argument_names(cls) is None:
            return cls(str(fields["message"]))
        return cls(**fields)
    except (TypeError, KeyError, ValueError):
        return None


def _argument_names(cls: type[SluiceError]) -> tuple[str, ...] | None:
    """The constructor's argument names (None: the plain ``Exception(message)`` one)."""
    own = [klass for klass in cls.__mro__ if klass.__module__ == SluiceError.__module__]
    if not any("__init__" in vars(klass) for klass in own):
        return None
    parameters = list(inspect.signature(cls.__init__).parameters.values())[1:]
    return tuple(p.name for p in parameters)
