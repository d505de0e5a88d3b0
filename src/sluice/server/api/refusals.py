"""Turning the deployment layer's refusals into HTTP answers, inside the routes.

ConflictError is 409; ParameterValidationError, ScheduleError and the
ValueErrors of bad settings are 422 (``{"detail": "..."}``, one line). Done
here rather than with app-wide handlers so that a ValueError from a bug
elsewhere still shows up as the 500 it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from fastapi import HTTPException

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
