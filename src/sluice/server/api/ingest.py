"""``POST /api/ingest``: a client's batch of records, durable when acknowledged.

The hot path of the server: a client's batcher sends thousands of records per
request. The route parses the raw body once, straight from JSON bytes to
records, instead of FastAPI's ``json.loads`` followed by a second pass over
the Python objects: first with msgspec, strict and several times faster than
pydantic, which reads every body our own client sends; a body it refuses is
parsed again by pydantic, which is laxer (``"1"`` for an int, timestamps as
numbers) and words the 422 field errors the API documents. The endpoint is still
declared with an ``IngestBatch`` parameter, so the OpenAPI schema (and the
docs) are the same as for any FastAPI body; :class:`RawBodyRoute` only
replaces how the request is handled.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import msgspec
from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import TypeAdapter, ValidationError
from starlette.concurrency import run_in_threadpool

from sluice.api_schemas import Accepted, IngestBatch
from sluice.server import actions
from sluice.server.api.deps import IngestWriterDep
from sluice.server.api.route_table import RouteTable
from sluice.server.ingest_writer import IngestWriter
from sluice.server.json_bodies import parse_json_body

_BATCH: TypeAdapter[IngestBatch] = TypeAdapter(IngestBatch)
_STRICT_BATCH = msgspec.json.Decoder(IngestBatch)


def parse_batch(body: bytes) -> IngestBatch:
    """The batch in a request body, or :class:`RequestValidationError` (422) with
    the same field errors (``loc`` starting with ``"body"``) FastAPI would give.

    Both parsers refuse lone surrogates, so the batch's strings are valid Unicode.
    """
    try:
        # Accepts a subset of what pydantic accepts, to the same records;
        # anything else (even valid) goes the slower way below.
        return _STRICT_BATCH.decode(body)
    except (msgspec.MsgspecError, RecursionError):
        # RecursionError: nesting deeper than the interpreter's stack (msgspec
        # builds values recursively); the strict parser below words the refusal.
        pass
    # Strict JSON first (pydantic's own JSON parsing takes NaN and Infinity),
    # then pydantic's laxer validation, which words the API's field errors.
    data = parse_json_body(body)
    try:
        return _BATCH.validate_python(data)
    except ValidationError as exc:
        raise _body_errors(exc) from None


def _body_errors(exc: ValidationError) -> RequestValidationError:
    errors = exc.errors(include_url=False)
    return RequestValidationError([{**e, "loc": ("body", *e["loc"])} for e in errors])


def ingest_body(writer: IngestWriter, body: bytes) -> Accepted:
    """Parse, check and write one request body; the answer (records written, runs refused).

    Both parsers refuse lone surrogates, so the batch's strings are valid Unicode.
    """
    return actions.ingest_batch(writer, parse_batch(body), unicode_checked=True)


class RawBodyRoute(APIRoute):
    """Hands the endpoint's work the raw body (parsed by :func:`parse_batch`)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        async def handler(request: Request) -> Response:
            body = await request.body()
            writer: IngestWriter = request.app.state.ingest_writer
            # Parsing thousands of records and waiting for the writer both
            # block: off the event loop, like a sync FastAPI route.
            answer = await run_in_threadpool(ingest_body, writer, body)
            content = {"accepted": answer.accepted, "superseded": answer.superseded}
            return JSONResponse(content, status_code=202)

        return handler


router = RouteTable(tags=["ingest"], route_class=RawBodyRoute)


@router.post("/ingest", status_code=202, response_model=Accepted)
def ingest(batch: IngestBatch, writer: IngestWriterDep) -> Accepted:
    """Write flows, runs, states, logs and heartbeats; 202 once durable."""
    return actions.ingest_batch(writer, batch)
