"""Request bodies parsed strictly: JSON that nothing can use is a 422 at the door.

Python's ``json`` module (which FastAPI uses) accepts more than JSON:
``NaN`` and ``Infinity``, ``1e999999`` (read as ``inf``), strings holding
lone surrogates (``"\\ud800"``: a ``str`` no UTF-8 encoder takes) and
nesting deep enough to exhaust the interpreter's recursion. None of these can
be stored or even echoed back in an error answer, so they failed later as
5xx. :func:`parse_json_body` refuses them while parsing, naming where they are.

Parsing is pydantic-core's JSON parser (jiter), which refuses ``NaN``,
``Infinity``, lone surrogates, integers of more than 4,300 digits and
nesting deeper than :data:`MAX_DEPTH`; a number too large for a float comes
back as ``inf`` and is refused after parsing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic_core import from_json

from sluice.server.middleware import is_json_type

#: deepest nesting of arrays and objects a body may have (jiter's recursion limit)
MAX_DEPTH = 200

Loc = tuple[str | int, ...]

_POSITION = re.compile(r"line (\d+) column (\d+)")
_NOT_NUMBERS = (b"NaN", b"Infinity", b"-Infinity")
#: a surrogate's escape in JSON text (backslash, u, D800 to DFFF): lone unless paired
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json_body(body: bytes) -> Any:
    """The JSON value of a request body.

    Raises:
        RequestValidationError: not JSON, or JSON holding a value nothing can use
            (``NaN``/``Infinity``, a number out of a float's range, a lone
            surrogate, nesting deeper than :data:`MAX_DEPTH`); each error in
            FastAPI's shape, ``loc`` starting with ``"body"``.
    """
    try:
        value = from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise _parse_error(body, str(exc)) from None
    found = _first_unusable(value)
    if found is not None:
        loc, msg = found
        raise RequestValidationError([_error(loc, msg, "value_error")])
    return value


def _parse_error(body: bytes, reason: str) -> RequestValidationError:
    if _SURROGATE_ESCAPE.search(body):
        located = _locate_surrogate(body)
        if located is not None:
            loc, msg = located
            return RequestValidationError([_error(loc, msg, "string_unicode")])
    offset = _offset(body, reason)
    if offset is not None and body[offset:].startswith(_NOT_NUMBERS):
        reason = f"NaN and Infinity are not JSON numbers ({reason})"
    elif "recursion limit" in reason:
        reason = f"nested deeper than {MAX_DEPTH} levels ({reason})"
    error = _error(("body",), f"JSON decode error: {reason}", "json_invalid")
    return RequestValidationError([error])


def _offset(body: bytes, reason: str) -> int | None:
    """The byte offset jiter's "at line L column C" points at (None if it says none)."""
    match = _POSITION.search(reason)
    if match is None:
        return None
    line, column = int(match.group(1)), int(match.group(2))
    start = 0
    for _ in range(line - 1):
        start = body.find(b"\n", start) + 1
        if start == 0:
            return None
    # jiter's column points at the character after the one it stopped on.
    return max(start + column - 1, 0)


def _locate_surrogate(body: bytes) -> tuple[Loc, str] | None:
    """Where a lone surrogate sits, read with the standard parser (which takes them)."""
    try:
        value = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return None
    return _first_unusable(value)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _first_unusable(value: Any) -> tuple[Loc, str] | None:
    """The first non-finite number or lone surrogate in ``value``, and why.

    Iterative: a value from the standard parser may be nested deeper than
    the interpreter's recursion allows.
    """
    pending: list[tuple[Any, Loc]] = [(value, ("body",))]
    while pending:
        item, loc = pending.pop()
        kind = type(item)
        if kind is float:
            if not math.isfinite(item):
                return loc, "number out of range (not a finite number)"
        elif kind is str:
            if not _is_unicode(item):
                return loc, "string holds a lone surrogate (not UTF-8)"
        elif kind is dict:
            for key, child in item.items():
                if not _is_unicode(key):
                    return (*loc, key), "key holds a lone surrogate (not UTF-8)"
                pending.append((child, (*loc, key)))
        elif kind is list:
            pending.extend((child, (*loc, index)) for index, child in enumerate(item))
    return None


def _is_unicode(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _error(loc: Loc, msg: str, type_: str) -> dict[str, Any]:
    return {"type": type_, "loc": loc, "msg": msg, "input": None}


def wants_json(request: Request) -> bool:
    """True when FastAPI would read this request's body as JSON (a JSON content
    type, or none at all)."""
    content_type = request.headers.get("content-type")
    return not content_type or is_json_type(content_type)


class _ParsedRequest(Request):
    """A request whose JSON body :func:`parse_json_body` parses, once."""

    parsed: Any = None

    async def json(self) -> Any:
        return self.parsed


class StrictJSONRoute(APIRoute):
    """An ``APIRoute`` whose JSON body is parsed by :func:`parse_json_body`
    (FastAPI's own parsing is the lax standard one)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def handler(request: Request) -> Response:
            if not wants_json(request):
                return await handle(request)
            strict = _ParsedRequest(request.scope, request.receive)
            body = await strict.body()
            if body:
                strict.parsed = parse_json_body(body)
            return await handle(strict)

        return handler
