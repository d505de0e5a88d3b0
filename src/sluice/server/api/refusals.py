"""Turning the deployment layer's refusals into HTTP answers, inside the routes.

ConflictError is 409; ParameterValidationError, ScheduleError and the
ValueErrors of bad settings are 422 (``{"detail": "..."}``, one line). Done
here rather than with app-wide handlers so that a ValueError from a bug
elsewhere still shows up as the 500 it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fastapi import HTTPException, Request

from sluice.errors import ConflictError, NotFoundError, ParameterValidationError


@contextmanager
def refusals() -> Iterator[None]:
    """Map ConflictError to 409 and ValueError-like refusals to 422."""
    try:
        yield
    except NotFoundError:
        raise
    except ConflictError as exc:
        raise HTTPException(status_code=409, detail=str(exc)) from None
    except (ValueError, ParameterValidationError) as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from None


def _holds_nul(value: Any, depth: int = 0) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if depth > 64:
        return False
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return any(_holds_nul(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    if isinstance(value, dict):
        return any(_holds_nul(k, depth + 1) or _holds_nul(v, depth + 1) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(_holds_nul(v, depth + 1) for v in value)
    return False


def refuse_nul(value: Any, where: str = "body") -> None:
    """422 for text holding NUL characters, which PostgreSQL cannot store (names, keys,
    descriptions: unlike log lines they are not rewritten, they are refused)."""
    if _holds_nul(value):
        raise HTTPException(status_code=422, detail=f"{where} holds a NUL character")


def no_nul_in_url(request: Request) -> None:
    """A router dependency: path and query values holding NUL are refused (422)."""
    refuse_nul(list(request.path_params.values()), "the path")
    refuse_nul(list(request.query_params.values()), "the query")
