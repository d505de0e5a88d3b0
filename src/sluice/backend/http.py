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
arrive, a line says so. Reads flush first, so a process reads its own
writes, and retry briefly while the server is unreachable.

Re-sending is harmless. Run rows are upserts; after a failure the writer
skips the parts of a batch the server acknowledged, and sends the rest
marked ``resent``, because a request whose answer was lost (the server
stopped between committing and replying) may be stored already: for a
resent batch the server appends only the states and logs it does not hold.
"""

from __future__ import annotations

import datetime as _dt
import sys
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from sluice.backend import wire
from sluice.backend.attempts import HeldAttempts
from sluice.backend.batcher import WriteBatch, WriteBehindBatcher, counts_in_words
from sluice.backend.http_deployments import HttpDeploymentsMixin
from sluice.backend.record_writes import RecordWrites, no_settle
from sluice.backend.transport import (
    READ_RETRY_TIMEOUT,
    Params,
    RequestRefusedError,
    ServerUnavailableError,
    Transport,
    with_retries,
)
from sluice.errors import ConfigurationError, StoreError
from sluice.schemas import (
    FlowRecord,
    FlowRunFilter,
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)
from sluice.settings import Settings, load_settings
from sluice.store.write_groups import KIND_NAMES

#: producers ahead of the writer by this many records wait (back-pressure)
MAX_PENDING = 50_000
#: flow runs the server returns per request at most
MAX_PAGE = 1000


class HttpBackend(RecordWrites, HttpDeploymentsMixin):
    """Record and read runs through the Sluice server at ``settings.api_url``.

    Deployments, work pools and claims: see :class:`HttpDeploymentsMixin`.

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

    # -- reads ---------------------------------------------------------------------

    def _get(
        self,
        path: str,
        tp: Any,
        params: Params | None = None,
        lookup: tuple[str, str] | None = None,
    ) -> Any:
        """Flush, then GET ``path`` and decode the body as ``tp`` (retried while the
        server is unreachable, briefly)."""
        self.flush()
        response = with_retries(
            lambda: self._transport.request("GET", path, params=params, lookup=lookup),
            min(READ_RETRY_TIMEOUT, self._retry_timeout),
        )
        return wire.decode(tp, response.content)

    def read_flow(self, name: str) -> FlowRecord:
        """A flow by name (``my_flow`` and ``my-flow`` both match). Raises NotFoundError."""
        result: FlowRecord = self._get(f"/api/flows/{_seg(name)}", FlowRecord, None, ("flow", name))
        return result

    def list_flows(self, limit: int = 200) -> list[FlowRecord]:
        """Flows, most recently created first."""
        result: list[FlowRecord] = self._get("/api/flows", list[FlowRecord], {"limit": limit})
        return result

    def read_flow_run(self, run_id: str) -> FlowRunRecord:
        """A flow run by id or unique id prefix. Raises NotFoundError."""
        path = f"/api/flow_runs/{_seg(run_id)}"
        result: FlowRunRecord = self._get(path, FlowRunRecord, None, ("flow run", run_id))
        return result

    def list_flow_runs(self, flt: FlowRunFilter) -> list[FlowRunRecord]:
        """Flow runs matching ``flt``, newest first (pages of at most 1,000 requested
        one after the other when ``flt.limit`` is larger)."""
        runs: list[FlowRunRecord] = []
        offset, wanted = flt.offset, flt.limit
        while wanted > 0:
            size = min(wanted, MAX_PAGE)
            params = {**_filter_params(flt), "limit": size, "offset": offset}
            page: list[FlowRunRecord] = self._get("/api/flow_runs", list[FlowRunRecord], params)
            runs.extend(page)
            if len(page) < size:
                break
            offset, wanted = offset + size, wanted - size
        return runs

    def count_flow_runs(self, flt: FlowRunFilter) -> int:
        """How many flow runs match ``flt`` (ignoring limit/offset)."""
        body = self._get("/api/flow_runs/count", dict[str, int], _filter_params(flt))
        return int(body["count"])

    def read_task_runs(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Task runs of a flow run, in creation order."""
        path = f"/api/flow_runs/{_seg(flow_run_id)}/task_runs"
        result: list[TaskRunRecord] = self._get(path, list[TaskRunRecord])
        return result

    def read_task_run(self, task_run_id: str) -> TaskRunRecord:
        """A task run by id or unique id prefix. Raises NotFoundError."""
        path = f"/api/task_runs/{_seg(task_run_id)}"
        result: TaskRunRecord = self._get(path, TaskRunRecord, None, ("task run", task_run_id))
        return result

    def read_states(self, run_id: str) -> list[StateRecord]:
        """The state history of a flow or task run, oldest first."""
        result: list[StateRecord] = self._get(f"/api/runs/{_seg(run_id)}/states", list[StateRecord])
        return result

    def find_cached_task_run(self, cache_key: str, now: _dt.datetime) -> TaskRunRecord | None:
        """The newest Completed task run with ``cache_key``, a stored result, and a cache
        expiration that is unset or later than ``now``; None when there is none."""
        params = {"cache_key": cache_key, "now": wire.encode_time(now)}
        result: TaskRunRecord | None = self._get(
            "/api/task_runs/cached", TaskRunRecord | None, params
        )
        return result

    def read_journal(self, flow_run_id: str) -> list[TaskRunRecord]:
        """Every Completed task run of a flow run that has a stored result, in creation order."""
        path = f"/api/flow_runs/{_seg(flow_run_id)}/journal"
        result: list[TaskRunRecord] = self._get(path, list[TaskRunRecord])
        return result

    def mark_lapsed_runs_crashed(self, timeout: float) -> list[str]:
        """Mark Running flow runs silent for ``timeout`` seconds (the server judges with its
        database's clock) as Crashed, in one transaction; the flow run ids marked.
        Pending writes (this process's heartbeats) are delivered first. Retried while
        the server is unreachable: marking is idempotent."""
        return self._post_ids("/api/flow_runs/mark_lapsed", {"timeout": timeout})

    def mark_gone_runs_crashed(self, runs: Sequence[FlowRunRecord]) -> list[str]:
        """Mark these Running flow runs Crashed, each only if it still runs in the process
        it recorded (which the caller saw gone from its host); the ids marked."""
        gone = [
            {"flow_run_id": r.id, "host_id": r.host_id, "pid": r.pid, "pid_started": r.pid_started}
            for r in runs
            if r.host_id is not None and r.pid is not None and r.pid_started is not None
        ]
        return self._post_ids("/api/flow_runs/mark_gone", {"runs": gone}) if gone else []

    def _post_ids(self, path: str, body: dict[str, Any]) -> list[str]:
        self.flush()
        response = with_retries(
            lambda: self._transport.request("POST", path, json=body),
            min(READ_RETRY_TIMEOUT, self._retry_timeout),
        )
        ids: dict[str, list[str]] = wire.decode(dict[str, list[str]], response.content)
        return ids["ids"]

    # -- attempts (see sluice.liveness) -------------------------------------------------

    def claim_attempt(self, flow_run_id: str) -> int:
        """Take the next attempt of a flow run for this process (the server does it in
        one transaction); its number.

        Raises:
            NotFoundError: no such run.
        """
        self.flush()
        path = f"/api/flow_runs/{_seg(flow_run_id)}/attempt"
        response = with_retries(
            # A JSON body, as every state-changing request of the API carries.
            lambda: self._transport.request(
                "POST", path, json={}, lookup=("flow run", flow_run_id)
            ),
            self._retry_timeout,
        )
        return int(wire.decode(dict[str, int], response.content)["attempt"])

    def hold_attempt(self, flow_run_id: str, attempt: int) -> None:
        """Fence every ingest body sent from now on with ``attempt`` of ``flow_run_id``."""
        self.attempts.hold(flow_run_id, attempt)

    def release_attempt(self, flow_run_id: str) -> None:
        """Stop fencing ingest bodies for ``flow_run_id``."""
        self.attempts.release(flow_run_id)

    def attempt_lost(self, flow_run_id: str) -> bool:
        """Whether the server refused this process's records of ``flow_run_id``."""
        return self.attempts.lost(flow_run_id)

    def attempt_confirmed_at(self, flow_run_id: str) -> float:
        """When (monotonic) a delivery last proved this process's attempt still held."""
        return self.attempts.confirmed_at(flow_run_id)

    def confirm_attempt(self, flow_run_id: str, attempt: int) -> bool:
        """Ask the server now whether ``attempt`` still holds ``flow_run_id``."""
        from sluice.liveness import is_superseded

        path = f"/api/flow_runs/{_seg(flow_run_id)}/attempt"
        stored = self._get(path, dict[str, int], None, ("flow run", flow_run_id))["attempt"]
        held = not is_superseded(attempt, stored)
        self.attempts.settle([(flow_run_id, attempt)], set() if held else {flow_run_id}, 0.0)
        return held

    def read_logs(
        self,
        flow_run_id: str,
        *,
        task_run_id: str | None = None,
        min_level: int = 0,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[LogRecord]:
        """Logs of a flow run (and its task runs), oldest first."""
        params: dict[str, str | int] = {"min_level": min_level, "offset": offset}
        if task_run_id is not None:
            params["task_run_id"] = task_run_id
        if limit is not None:
            params["limit"] = limit
        path = f"/api/flow_runs/{_seg(flow_run_id)}/logs"
        result: list[LogRecord] = self._get(path, list[LogRecord], params)
        return result


def _seg(value: str) -> str:
    """``value`` as one URL path segment."""
    return quote(value, safe="")


def _filter_params(flt: FlowRunFilter) -> dict[str, str | int | list[str]]:
    params: dict[str, str | int | list[str]] = {}
    if flt.flow_name is not None:
        params["flow_name"] = flt.flow_name
    if flt.state_types:
        params["state"] = [t.value for t in flt.state_types]
    if flt.tags:
        params["tag"] = list(flt.tags)
    if flt.started_after is not None:
        params["started_after"] = wire.encode_time(flt.started_after)
    if flt.started_before is not None:
        params["started_before"] = wire.encode_time(flt.started_before)
    if flt.parent_flow_run_id is not None:
        params["parent_flow_run_id"] = flt.parent_flow_run_id
    return params
