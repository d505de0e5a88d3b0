"""What the ingest route does, as a plain function over the server's ingest writer.

The layer between the HTTP route (which only parses and renders) and the
store: no FastAPI here, so it is callable and testable without a server. (The
other routes run operations: :mod:`sluice.server.api.operations`.)
"""

from __future__ import annotations

from sluice.api_schemas import Accepted, IngestBatch
from sluice.errors import BatchTooLarge
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
