"""Giving a task or flow object its function's name, docstring and module."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any


def wrap_like(wrapper: object, fn: Callable[..., Any]) -> None:
    """What :func:`functools.update_wrapper` does, without reading ``wrapper.__dict__``
    when ``fn`` has no attributes of its own.

    Reading an instance's ``__dict__`` makes CPython keep its attributes in a
    dictionary rather than inline, which makes every later attribute read
    slower: the engine reads a task's attributes several times per call.
    """
    for name in functools.WRAPPER_ASSIGNMENTS:
        try:
            value = getattr(fn, name)
        except AttributeError:
            continue
        setattr(wrapper, name, value)
    own = getattr(fn, "__dict__", None)
    if own:
        wrapper.__dict__.update(own)
    wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
