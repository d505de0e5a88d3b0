"""Refusing what the store cannot hold, and the UI routes' refusals of bad settings.

The operations' refusals (NotFoundError, ConflictError, InvalidInputError ...)
are answered by the app's error handlers (:mod:`sluice.server.errors`); the
UI's form routes also turn the plain ValueErrors of schedule and backfill
helpers into 422s with :func:`refusals`. Done there rather than app-wide so
that a ValueError from a bug elsewhere still shows up as the 500 it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request

from sluice.errors import SluiceError


@contextmanager
def refusals() -> Iterator[None]:
    """Map plain ValueErrors (bad settings a helper refused) to 422."""
    try:
        yield
    except SluiceError:
        raise
    except ValueError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def holds_nul(value: Any, depth: int = 0) -> bool:
    """Whether text anywhere in ``value`` (records, lists, dicts and their keys) holds NUL."""
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(holds_nul(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return any(holds_nul(k, depth + 1) or holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(holds_nul(v, depth + 1) for v in value)
    return False


def refuse_nul(value: Any, where: str = "body") -> None:
    """422 for text holding NUL characters, which PostgreSQL cannot store (names, keys,
    descriptions: unlike log lines they are not rewritten, they are refused)."""
    if holds_nul(value):
        raise HTTPException(status_code=422, detail=f"{where} holds a NUL character")


def no_nul_in_url(request: Request) -> None:
    """A router dependency: path and query values holding NUL are refused (422)."""
    refuse_nul(list(request.path_params.values()), "the path")
    refuse_nul(list(request.query_params.values()), "the query")
