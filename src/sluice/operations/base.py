"""``Operation[R]``: the base of every request type, and what a request answers.

A request type is a frozen dataclass whose fields are the operation's
arguments; its base ``Operation[R]`` says what running it gives back. Stores
run requests with ``execute`` (see :class:`sluice.backend.protocol.Backend`).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Generic, TypeVar

R = TypeVar("R")


class Operation(Generic[R]):
    """A request to a store answering an ``R`` (subclassed by frozen dataclasses)."""

    __slots__ = ()


_RESULT_TYPES: dict[type[Any], Any] = {}


def result_type(op_type: type[Operation[Any]]) -> Any:
    """The ``R`` of ``op_type``'s ``Operation[R]`` base (e.g. ``list[FlowRunRecord]``).

    Raises:
        TypeError: ``op_type`` does not name its result.
    """
    found = _RESULT_TYPES.get(op_type)
    if found is None:
        found = _RESULT_TYPES[op_type] = _declared_result(op_type)
    return found


def _declared_result(op_type: type[Operation[Any]]) -> Any:
    for klass in op_type.__mro__:
        for base in getattr(klass, "__orig_bases__", ()):
            if typing.get_origin(base) is Operation:
                return typing.get_args(base)[0]
    raise TypeError(f"{op_type.__name__} does not derive from Operation[...]")


def request_fields(op_type: type[Operation[Any]]) -> tuple[dataclasses.Field[Any], ...]:
    """The fields of a request type (a dataclass), in order."""
    return dataclasses.fields(typing.cast(Any, op_type))
