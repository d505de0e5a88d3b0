"""What the routes do, as plain functions over a :class:`~sluice.backend.protocol.Backend`.

The layer between the HTTP routes (which only parse and render) and the
store: no FastAPI here, so these are callable and testable without a server.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from sluice.api_schemas import Accepted, IngestBatch
from sluice.backend import transitions
from sluice.backend.protocol import Backend
from sluice.errors import BatchTooLarge
from sluice.orchestration import SET_STATE_POLICY, ProposedState, Rule
from sluice.schemas import FlowRunRecord
from sluice.server.ingest_writer import IngestWriter, groups_of
from sluice.server.validation import check_storable

#: most records one ingest request may carry (docs/api.md)
MAX_BATCH_RECORDS = 100_000


def ingest(
    writer: IngestWriter,
    batch: IngestBatch,
    *,
    limit: int = MAX_BATCH_RECORDS,
    unicode_checked: bool = False,
) -> int:
    """Write a client's batch (see :func:`ingest_batch`); the number of records it holds."""
    return ingest_batch(writer, batch, limit=limit, unicode_checked=unicode_checked).accepted


def ingest_batch(
    writer: IngestWriter,
    batch: IngestBatch,
    *,
    limit: int = MAX_BATCH_RECORDS,
    unicode_checked: bool = False,
) -> Accepted:
    """Write a client's batch and make it durable; how many records it holds, and the
    fenced runs whose records were refused (a later attempt holds them).

    Run rows are upserts and heartbeats only move forward, so writing them
    again is harmless. State history and logs are appended, except in a batch
    marked ``resent`` (the client never saw the answer to an earlier attempt):
    then only the states and lines the store does not hold yet are appended.

    Args:
        unicode_checked: the batch was parsed from JSON by pydantic (see
            :func:`~sluice.server.validation.check_storable`).

    Raises:
        BatchTooLarge: more than ``limit`` records.
        InvalidRecords: a value the store cannot hold (nothing is written then).
        StoreError: the records could not be made durable.
    """
    count = batch.record_count()
    if count > limit:
        raise BatchTooLarge(count, limit)
    check_storable(batch, unicode_checked=unicode_checked)
    # Acknowledged means durable: both return once committed.
    if batch.resent:
        _new, superseded = writer.write_resent(groups_of(batch))
    else:
        superseded = writer.write(batch)
    return Accepted(accepted=count, superseded=sorted(superseded))


def set_flow_run_state(
    backend: Backend,
    run_id: str,
    asked: ProposedState,
    now: _dt.datetime,
    rules: Sequence[Rule] = SET_STATE_POLICY,
) -> FlowRunRecord:
    """Move a flow run to ``asked`` if ``rules`` allow it; the run as it is afterwards.

    Raises:
        InvalidRecords: ``asked`` holds a value the store cannot keep.
        NotFoundError / AmbiguousIdError: no (or no unique) flow run ``run_id``.
        TransitionRefused: a rule refused the change.
    """
    check_storable(asked)
    return transitions.set_flow_run_state(backend, run_id, asked, now, rules)


def cancel_flow_run(backend: Backend, run_id: str, now: _dt.datetime) -> FlowRunRecord:
    """Ask a flow run to stop (see :func:`sluice.backend.transitions.cancel_flow_run`)."""
    return transitions.cancel_flow_run(backend, run_id, now)
