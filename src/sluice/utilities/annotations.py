"""Wrappers that change how the engine treats a call argument."""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class _Annotation(Generic[T]):
    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        return self.value

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(_Annotation[T]):
    """Pass the same value to every call of a ``.map()`` instead of iterating over it."""


class allow_failure(_Annotation[T]):
    """Let a task run even if this upstream future failed; it receives the exception."""
