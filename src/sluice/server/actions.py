"""What the routes do, as plain functions over a :class:`~sluice.backend.protocol.Backend`.

The layer between the HTTP routes (which only parse and render) and the
store: no FastAPI here, so these are callable and testable without a server.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from sluice.api_schemas import IngestBatch
from sluice.backend.protocol import Backend
from sluice.errors import SluiceError
from sluice.schemas import FlowRunRecord, StateRecord
from sluice.server.ingest_writer import IngestWriter, rows_of
from sluice.server.orchestration import (
    CANCEL_POLICY,
    SET_STATE_POLICY,
    Outcome,
    Proposal,
    ProposedState,
    Rule,
    evaluate,
)
from sluice.server.validation import check_storable
from sluice.states import State, StateType

#: most records one ingest request may carry (docs/api.md)
MAX_BATCH_RECORDS = 100_000


class TransitionRefused(SluiceError):
    """An orchestration rule refused a state change.

    Attributes:
        run_id: the flow run.
        rule: the name of the rule that refused.
        reason: why, in a sentence.
    """

    def __init__(self, run_id: str, rule: str, reason: str) -> None:
        self.run_id = run_id
        self.rule = rule
        self.reason = reason
        super().__init__(f"State change of flow run {run_id} refused by {rule}: {reason}")


class BatchTooLarge(SluiceError):
    """An ingest batch holds more records than one request may."""

    def __init__(self, count: int, limit: int) -> None:
        self.count = count
        self.limit = limit
        super().__init__(f"The batch holds {count} records; at most {limit} per request")


def ingest(
    writer: IngestWriter,
    batch: IngestBatch,
    *,
    limit: int = MAX_BATCH_RECORDS,
    unicode_checked: bool = False,
) -> int:
    """Write a client's batch and make it durable; the number of records it holds.

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
    rows = rows_of(batch)
    # Acknowledged means durable: both return once committed.
    if batch.resent:
        writer.write_resent(rows)
    else:
        writer.write(rows)
    return count


def set_flow_run_state(
    backend: Backend,
    run_id: str,
    asked: ProposedState,
    now: _dt.datetime,
    rules: Sequence[Rule] = SET_STATE_POLICY,
) -> FlowRunRecord:
    """Move a flow run to ``asked`` if ``rules`` allow it; the run as it is afterwards.

    Raises:
        NotFoundError / AmbiguousIdError: no (or no unique) flow run ``run_id``.
        TransitionRefused: a rule refused the change.
    """
    check_storable(asked)
    run = backend.read_flow_run(run_id)
    decision = evaluate(Proposal(run.state_type, run.state_name, asked, now), rules)
    if decision.outcome is Outcome.REJECT:
        raise TransitionRefused(run.id, decision.rule, decision.reason)
    if decision.outcome is Outcome.UNCHANGED:
        return run
    state = State(decision.state.type, decision.state.name, decision.state.message, timestamp=now)
    run.apply(state)
    backend.write_flow_run(run, StateRecord.from_state(run.id, "flow", state))
    backend.flush()
    return run


def cancel_flow_run(backend: Backend, run_id: str, now: _dt.datetime) -> FlowRunRecord:
    """Ask a flow run to stop: Cancelling, or Cancelled at once if it never started.

    Raises:
        NotFoundError / AmbiguousIdError: no (or no unique) flow run ``run_id``.
        TransitionRefused: the run is already finished.
    """
    asked = ProposedState(StateType.CANCELLING, "Cancelling", "Cancellation requested")
    return set_flow_run_state(backend, run_id, asked, now, CANCEL_POLICY)
