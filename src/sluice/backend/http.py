"""HttpBackend: the Backend protocol over a Sluice server's REST API (client mode).

Writes take a snapshot of the record on the caller's thread and go through a
:class:`~sluice.backend.batcher.WriteBehindBatcher`, as in the embedded store
(:mod:`sluice.backend.record_writes`, the same kinds and coalescing); the
writer thread posts each batch to ``/api/ingest``.
Unlike the embedded writer it does not commit as soon as it is idle: a batch
is an HTTP request and a server transaction, so batches form over
``store.flush_interval`` (or ``store.batch_size`` records), and flushes (a
flow run's start and end, reads) send at once.

While the server is down or restarting the writer keeps the batch and retries
it with backoff, so no record is lost; :meth:`HttpBackend.flush` waits up to
``settings.store.retry_timeout`` seconds (``SLUICE_API_RETRY_TIMEOUT`` is the
older name), then raises, naming what is still pending, while delivery goes
on in the background and again when the process exits; once those records
arrive, a line says so. Operations (:meth:`HttpBackend.execute`) flush first,
so a process reads its own writes; each is one request (or a few pages)
built from its entry in :mod:`sluice.operations.routes`.

Re-sending is harmless. Run rows are upserts; after a failure the writer
skips the parts of a batch the server acknowledged, and sends the rest
marked ``resent``, because a request whose answer was lost (the server
stopped between committing and replying) may be stored already: for a
resent batch the server appends only the states and logs it does not hold.
"""

from __future__ import annotations

import sys
from typing import Any, TypeVar, cast
from urllib.parse import quote

from sluice.backend import wire
from sluice.backend.attempts import HeldAttempts
from sluice.backend.batcher import WriteBatch, WriteBehindBatcher, counts_in_words
from sluice.backend.protocol import Backend
from sluice.backend.record_writes import RecordWrites, no_settle
from sluice.backend.transport import READ_RETRY_TIMEOUT, Transport, with_retries
from sluice.errors import (
    ConfigurationError,
    NotFoundError,
    RequestRefusedError,
    ServerUnavailableError,
    StoreError,
)
from sluice.operations.base import Operation, result_type
from sluice.operations.routes import Placement, Retry, Route, placement, route_of
from sluice.settings import Settings, load_settings
from sluice.store.write_groups import KIND_NAMES

#: producers ahead of the writer by this many records wait (back-pressure)
MAX_PENDING = 50_000
#: where the API's paths start
API_PREFIX = "/api"
T = TypeVar("T")


class HttpBackend(RecordWrites, Backend):
    """Record runs, and run operations, through the Sluice server at ``settings.api_url``.

    Nothing is sent in the constructor: an unreachable server shows up at the
    first flush or read (and is retried there).

    Raises:
        ConfigurationError: ``settings.api_url`` is empty or not an http(s) URL.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        url = self.settings.api_url
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"SLUICE_API_URL must be an http:// or https:// URL, not {url!r}"
            )
        self._retry_timeout = self.settings.store.retry_timeout
        self._transport = Transport(url, self.settings.api_key)
        self.url = self._transport.url
        #: the batch being retried and its appended items already delivered (kind -> count)
        self._partial: tuple[WriteBatch, dict[int, int]] | None = None
        #: records a flush reported pending (not delivered in time), until they arrive
        self._reported_pending: str | None = None
        self._batcher = WriteBehindBatcher(
            self._send_batch,
            batch_size=self.settings.store.batch_size,
            flush_interval=self.settings.store.flush_interval,
            max_pending=MAX_PENDING,
            stall_timeout=self._retry_timeout,
            name="sluice-http-writer",
            group_commit=False,
            outage=lambda exc: isinstance(exc, ServerUnavailableError),
            retry_timeout=self._retry_timeout,
            describe=lambda counts: counts_in_words(counts, KIND_NAMES),
        )
        self._put = self._batcher.put
        self._put_many = self._batcher.put_many
        # Batches form over the flush interval: no writer to wait for.
        self._settle = no_settle
        #: attempts this process holds: every ingest body is fenced with them
        self.attempts = HeldAttempts()

    def __repr__(self) -> str:
        return f"HttpBackend({self.url!r})"

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._batcher.closed

    # -- writes (the record writes themselves: see RecordWrites) ------------------

    def flush(self) -> None:
        """Deliver every write made so far, waiting (with retries) while the server is
        unreachable, for up to ``settings.store.retry_timeout`` seconds.

        Raises:
            StoreError: not delivered in time (the message says what is pending;
                delivery goes on in the background and at exit), or refused by the
                server (the records are kept and retried; a later flush succeeds
                once the cause is gone).
            ConfigurationError: the server refused the API key.
        """
        try:
            self._batcher.flush()
        except StoreError as exc:
            cause = exc.__cause__
            if isinstance(cause, ConfigurationError):
                raise cause from exc
            if not isinstance(cause, ServerUnavailableError):
                raise
            raise self._pending_error(cause) from cause
        self._say_delivered()

    def _pending_error(self, cause: ServerUnavailableError) -> StoreError:
        pending = self._batcher.pending_text()
        self._reported_pending = pending
        timeout = self._retry_timeout
        return StoreError(
            f"Not delivered yet to the Sluice server at {self.url}: {pending}. It has been "
            f"unreachable for {self._batcher.outage_seconds:.0f} s (retry timeout "
            f"{timeout:g} s, store.retry_timeout or SLUICE_API_RETRY_TIMEOUT); last error: "
            f"{cause}. They are kept: delivery goes on in the background, and when this "
            f"process exits for up to {timeout:g} s more"
        )

    def _say_delivered(self) -> None:
        if self._reported_pending is not None:
            print(
                f"sluice: the records reported pending ({self._reported_pending}) "
                f"have been delivered to {self.url}",
                file=sys.stderr,
            )
            self._reported_pending = None

    def close(self) -> None:
        """Deliver what is buffered, stop the writer, close connections. While the
        server is unreachable, delivery is retried for up to
        ``settings.store.retry_timeout`` seconds from here.

        Raises:
            StoreError: some records could not be delivered (what, and the cause).
        """
        if self.closed:
            return
        try:
            self._batcher.close()
            self._say_delivered()
        finally:
            self._transport.close()

    def _send_batch(self, batch: WriteBatch) -> None:
        """The batcher's sink: post the batch as one or more ingest requests.

        After a failure, the appended records the server acknowledged are not
        sent again when the batcher retries the same batch, and the rest goes
        marked ``resent``: the failed request may have been committed without
        its answer reaching us, and the server then skips what it holds.
        """
        partial = self._partial
        retry = partial is not None and partial[0] is batch
        delivered = partial[1] if partial is not None and retry else {}
        self._partial = None
        fences, sent_at = self.attempts.fences()
        superseded: set[str] = set()
        try:
            for body in wire.request_bodies(batch, delivered, resent=retry, fences=fences):
                superseded |= self._deliver(body, delivered)
        except Exception:
            self._partial = (batch, delivered)
            raise
        self.attempts.settle(fences, superseded, sent_at)

    def _deliver(self, body: wire.Body, delivered: dict[int, int]) -> set[str]:
        """Post one body; count what it delivered into ``delivered``; the fenced runs the
        server refused (a later attempt holds them).

        A body the server refuses as such (422: a value it cannot store; 413) is
        split in halves until the refused records are alone; those are dropped
        with a message on stderr, so one bad record cannot block all the others.
        """
        superseded: set[str] = set()
        try:
            response = self._transport.request("POST", "/api/ingest", content=body.data)
            answer = wire.decode(dict[str, Any], response.content) if response.content else {}
            superseded.update(answer.get("superseded") or ())
        except RequestRefusedError as exc:
            if exc.status not in (413, 422):
                raise
            if len(body.parts) > 1:
                for half in body.halves():
                    superseded |= self._deliver(half, delivered)
                return superseded
            print(
                f"sluice: the server at {self.url} refused a record, which is dropped "
                f"({exc.status}: {exc.detail}): {body.describe()}",
                file=sys.stderr,
            )
        for kind, count in body.delivered.items():
            delivered[kind] = delivered.get(kind, 0) + count
        return superseded

    # -- operations ------------------------------------------------------------------

    def execute(self, op: Operation[T]) -> T:
        """Deliver pending writes, then send ``op`` to the server as its route says
        (:mod:`sluice.operations.routes`); the server's answer.

        Retried while the server is unreachable when the route says a second request
        is harmless (briefly, or for ``store.retry_timeout``); a refusal raises the
        error the server's store raised (its type and fields cross in the answer).

        Raises:
            the errors ``op`` documents; StoreError: the server stayed unreachable,
            or refused the request for another reason (RequestRefusedError).
        """
        route = route_of(type(op))
        self.flush()
        answer: T
        if route.pager is not None:
            answer = cast(T, route.pager.collect(op, lambda page: self._send(route, page)))
        else:
            answer = self._send(route, op)
        return answer

    def prepare_reads(self) -> None:
        """Nothing to load: the HTTP client's modules are loaded already."""

    def _send(self, route: Route, op: Operation[Any]) -> Any:
        """One request for ``op``; its decoded answer."""
        shape = placement(route)
        op_type: Any = type(op)
        fields = wire.adapter(op_type).dump_python(op, mode="json")
        path = API_PREFIX + route.path.format_map(self._path_values(shape, fields))
        params = {
            name: fields[field]
            for field, name in shape.query
            if fields[field] is not None and fields[field] != []
        }
        body: Any = None
        if shape.body is not None:
            body = fields[shape.body]
        elif shape.body_fields:
            body = {name: fields[field] for field, name in shape.body_fields}

        def attempt() -> Any:
            return self._transport.request(route.method, path, params=params or None, json=body)

        retry = route.retry_of(op)
        try:
            if retry is Retry.NEVER:
                response = attempt()
            else:
                brief = min(READ_RETRY_TIMEOUT, self._retry_timeout)
                timeout = brief if retry is Retry.BRIEF else self._retry_timeout
                response = with_retries(attempt, timeout)
        except RequestRefusedError as exc:
            if exc.refusal is None:
                raise
            raise exc.refusal from None
        if route.answer is not None:
            return getattr(wire.decode(route.answer, response.content), route.answer_field or "")
        if not response.content:
            return None
        return wire.decode(result_type(type(op)), response.content)

    def _path_values(self, shape: Placement, fields: dict[str, Any]) -> dict[str, str]:
        """The path placeholders' values (from the request's ``fields``, as JSON), each
        one URL path segment; a key given by id is looked up first."""
        values: dict[str, str] = {}
        for placeholder, field in shape.path:
            value: Any = fields
            for part in field.split("."):
                value = value[part]
            values[placeholder] = _seg(str(value))
        if shape.split is not None:
            field, key = shape.split
            full = str(fields[field])
            if "/" not in full:  # an id: the server's paths take the name
                found = self.execute(key.by_id(full))
                if not found:
                    raise NotFoundError(key.kind, full)
                full = key.full_name(found[0])
            first, _, second = full.partition("/")
            values[key.first], values[key.second] = _seg(first), _seg(second)
        return values


def _seg(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(value, safe="")
