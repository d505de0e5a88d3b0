"""The one place that turns Sluice's exceptions into HTTP answers (``{"detail": ...}``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from sluice.errors import (
    AmbiguousIdError,
    BatchTooLarge,
    InvalidRecords,
    NotFoundError,
    StoreError,
    TransitionRefused,
)

if TYPE_CHECKING:
    from fastapi import FastAPI, Request


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    # AmbiguousIdError is a NotFoundError: the id is known, just not unique.
    status = 409 if isinstance(exc, AmbiguousIdError) else 404
    return JSONResponse({"detail": str(exc)}, status_code=status)


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TransitionRefused)
    return JSONResponse({"detail": f"{exc.rule}: {exc.reason}", "rule": exc.rule}, status_code=409)


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=413)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    # A body our own code validated (not FastAPI): same shape as FastAPI's 422.
    assert isinstance(exc, ValidationError)
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return JSONResponse({"detail": jsonable_encoder(errors)}, status_code=422)


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidRecords)
    return JSONResponse({"detail": exc.errors}, status_code=422)


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Not the client's mistake, and usually passing (database busy or
    # restarting): 503 tells a client's batcher to retry later.
    return JSONResponse({"detail": str(exc)}, status_code=503)


def install_error_handlers(app: FastAPI) -> None:
    """Map Sluice's exceptions to status codes on ``app``."""
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(TransitionRefused, _refused)
    app.add_exception_handler(BatchTooLarge, _too_large)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(InvalidRecords, _unstorable)
    app.add_exception_handler(StoreError, _store_unavailable)
