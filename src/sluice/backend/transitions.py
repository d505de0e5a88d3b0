"""State changes people and tools ask for, applied to a store through the rules.

The server uses these for ``POST /api/flow_runs/{id}/set_state`` and ``/cancel``;
the embedded store uses them for the CLI and workers. Either way the rules of
:mod:`sluice.orchestration` decide, so both modes behave alike.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence

from sluice.backend.protocol import Backend
from sluice.errors import TransitionRefused
from sluice.orchestration import (
    CANCEL_POLICY,
    SET_STATE_POLICY,
    Outcome,
    Proposal,
    ProposedState,
    Rule,
    evaluate,
)
from sluice.schemas import FlowRunRecord, StateRecord
from sluice.states import State, StateType


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
