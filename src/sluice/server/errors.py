"""The one place that turns Sluice's exceptions into HTTP answers (``{"detail": ...}``).

An operation's refusal (not found, a conflict, bad input ...) also carries the
error itself, ``"error": {"type": ..., "fields": {...}}``, which the HTTP
client rebuilds (:mod:`sluice.operations.refusals`); a refusal naming an
argument lists it under ``fields`` for forms, as ``[{"field", "message"}]``.

Error answers echo what the client sent (a field's value, a name it asked
for), and what a client sends can be what JSON cannot carry: ``NaN``, a
lone surrogate, nesting thousands deep. Every answer here goes through
:func:`plain`, so rendering an error never fails (a failed render was a 500
and a dropped connection).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from sluice.errors import (
    AmbiguousIdError,
    BatchTooLarge,
    ConflictError,
    InvalidInputError,
    InvalidRecords,
    NotFoundError,
    ParameterValidationError,
    ScheduleError,
    StoreError,
    TransitionRefused,
)
from sluice.operations.refusals import refusal_of

if TYPE_CHECKING:
    from fastapi import FastAPI, Request

#: how deep an echoed value is kept in an error answer; deeper parts become "..."
_ECHO_DEPTH = 8
#: longest text echoed in an error answer
_ECHO_TEXT = 1000
#: errors listed in one answer
_MAX_ERRORS = 20


def plain(value: Any, depth: int = 0) -> Any:
    """``value`` as JSON can carry it: non-finite numbers as text, lone surrogates
    escaped, long text cut, nesting past a few levels elided, other objects as text."""
    kind = type(value)
    if value is None or kind is bool or kind is int:
        return value
    if kind is float:
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str):
        text = value if len(value) <= _ECHO_TEXT else value[:_ECHO_TEXT] + "..."
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    if depth >= _ECHO_DEPTH:
        return "..."
    if isinstance(value, dict):
        return {plain(str(k)): plain(v, depth + 1) for k, v in list(value.items())[:_MAX_ERRORS]}
    if isinstance(value, (list, tuple)):
        return [plain(v, depth + 1) for v in value[:_MAX_ERRORS]]
    if isinstance(value, bytes):
        return plain(value.decode("utf-8", "replace"), depth)
    return plain(str(value), depth)


def _answer(status: int, detail: Any, **extra: Any) -> JSONResponse:
    return JSONResponse(plain({"detail": detail, **extra}), status_code=status)


def _refusal(status: int, exc: Exception, detail: Any = None, **extra: Any) -> JSONResponse:
    """An answer refusing a request with ``exc``: its detail (by default its
    message), and the error itself for the client to rebuild."""
    shown = str(exc) if detail is None else detail
    return _answer(status, shown, **extra, error=refusal_of(exc))


async def _not_found(_: Request, exc: Exception) -> JSONResponse:
    # AmbiguousIdError is a NotFoundError: the id is known, just not unique.
    status = 409 if isinstance(exc, AmbiguousIdError) else 404
    return _refusal(status, exc)


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TransitionRefused)
    return _refusal(409, exc, f"{exc.rule}: {exc.reason}", rule=exc.rule)


async def _conflict(_: Request, exc: Exception) -> JSONResponse:
    return _refusal(409, exc)


async def _invalid_input(_: Request, exc: Exception) -> JSONResponse:
    field = getattr(exc, "field", None)
    if field is None:
        return _refusal(422, exc)
    message = str(exc).removeprefix(f"{field}: ")
    return _refusal(422, exc, fields=[{"field": field, "message": message}])


async def _bad_parameters(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ParameterValidationError)
    fields = [{"field": field, "message": message} for field, message in exc.errors]
    return _refusal(422, exc, fields=fields)


async def _too_large(_: Request, exc: Exception) -> JSONResponse:
    return _refusal(413, exc)


async def _invalid(_: Request, exc: Exception) -> JSONResponse:
    # A body our own code validated (not FastAPI): same shape as FastAPI's 422.
    assert isinstance(exc, ValidationError)
    errors = exc.errors(include_url=False, include_context=False, include_input=False)
    return _answer(422, errors)


async def _request_invalid(_: Request, exc: Exception) -> JSONResponse:
    # FastAPI's own answer, with the echoed input made safe to encode; a client
    # rebuilds it as the InvalidInputError of its first field.
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    return _answer(422, errors, error=refusal_of(_first_invalid(errors)))


def _first_invalid(errors: list[Any]) -> InvalidInputError:
    """The refusal of the first field error (``loc`` after ``body``/``query``/``path``)."""
    first = errors[0] if errors and isinstance(errors[0], dict) else {}
    loc = [str(part) for part in first.get("loc", ())]
    field = ".".join(loc[1:] if loc[:1] in (["body"], ["query"], ["path"]) else loc) or "body"
    return InvalidInputError(f"{field}: {first.get('msg', 'invalid')}", field=field)


async def _unstorable(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, InvalidRecords)
    return _refusal(422, exc, exc.errors)


async def _store_unavailable(_: Request, exc: Exception) -> JSONResponse:
    # Not the client's mistake, and usually passing (database busy or
    # restarting): 503 tells a client's batcher to retry later.
    return _answer(503, str(exc))


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):  # answers without a body
        return Response(status_code=exc.status_code, headers=exc.headers)
    return JSONResponse(
        plain({"detail": exc.detail}), status_code=exc.status_code, headers=exc.headers
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map Sluice's exceptions to status codes on ``app``."""
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(TransitionRefused, _refused)
    app.add_exception_handler(ConflictError, _conflict)
    app.add_exception_handler(InvalidInputError, _invalid_input)
    app.add_exception_handler(ScheduleError, _invalid_input)
    app.add_exception_handler(ParameterValidationError, _bad_parameters)
    app.add_exception_handler(BatchTooLarge, _too_large)
    app.add_exception_handler(ValidationError, _invalid)
    app.add_exception_handler(InvalidRecords, _unstorable)
    app.add_exception_handler(StoreError, _store_unavailable)
    app.add_exception_handler(RequestValidationError, _request_invalid)
    app.add_exception_handler(HTTPException, _http_error)
