"""Wrappers that change how the engine treats a call argument.

How each one treats a future (or anything holding futures) passed to a task:

==================  ===================================  ===========================
wrapper             the future itself                    futures inside a collection
==================  ===================================  ===========================
(none)              waited for, replaced by its result   found and replaced (4 deep)
``allow_failure``   same, and a failed one passes its    same
                    exception instead of stopping the
                    call
``opaque``          waited for, replaced by its result   left as they are: the value
                                                         is not walked
``quote``           passed as the future object          left as they are
==================  ===================================  ===========================

A future found is an upstream edge of the call (shown in the run graph);
``quote`` makes none, ``opaque`` only for the future it wraps. Either spares
the engine a walk through a large argument (a big dict, a DataFrame). The
task always receives the unwrapped value. ``unmapped`` is about ``.map()``:
the value goes whole to every call instead of being iterated over.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

T = TypeVar("T")


class BaseAnnotation(Generic[T]):
    """A value wrapped to tell the engine how to treat it; ``unwrap()`` gives it back."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def unwrap(self) -> T:
        """The wrapped value."""
        return self.value

    def rewrap(self, value: T) -> BaseAnnotation[T]:
        """The same kind of wrapper around another value."""
        return type(self)(value)

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other) or not isinstance(other, BaseAnnotation):
            return False
        return bool(self.value == other.value)

    def __hash__(self) -> int:
        return hash((type(self), self.value))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value!r})"


class unmapped(BaseAnnotation[T]):
    """Pass the same value to every call of a ``.map()`` instead of iterating over it."""


class allow_failure(BaseAnnotation[T]):
    """Let a task run even if this upstream future failed; it receives the exception."""


class quote(BaseAnnotation[T]):
    """Pass the value as it is: no future in it is waited for or resolved, no
    upstream edge is recorded, and the engine does not walk through it."""

    def unquote(self) -> T:
        """The wrapped value."""
        return self.value


class opaque(BaseAnnotation[T]):
    """Resolve the value itself if it is a future (wait, then pass its result, and
    record the upstream edge), but never walk into it looking for more futures."""


class NotSet:
    """A marker for "no value given", where ``None`` is a value."""


def is_annotation(value: Any) -> bool:
    """True for a value wrapped in one of the annotations above."""
    return isinstance(value, BaseAnnotation)


def has_annotations(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """True when an argument is wrapped (``quote``, ``opaque`` ...): the call must
    unwrap it (``sluice.engine.inputs.resolve_inputs``) even without upstream futures."""
    for value in args:
        if isinstance(value, BaseAnnotation):
            return True
    return any(isinstance(value, BaseAnnotation) for value in kwargs.values())


__all__ = ["BaseAnnotation", "NotSet", "allow_failure", "opaque", "quote", "unmapped"]
