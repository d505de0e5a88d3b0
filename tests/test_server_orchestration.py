"""The server's orchestration rules, one by one, and the policies they make up."""

from __future__ import annotations

import datetime as _dt

import pytest

from sluice.orchestration import (
    CANCEL_POLICY,
    SET_STATE_POLICY,
    CancelIsIdempotent,
    CancellingOnlyFromActive,
    CancelNotStartedDirectly,
    NoRunningWhileCancelling,
    NoTransitionOutOfTerminal,
    Outcome,
    PausedOnlyFromRunning,
    Proposal,
    ProposedState,
    evaluate,
)
from sluice.states import TERMINAL_TYPES, StateType

NOW = _dt.datetime(2025, 1, 1, tzinfo=_dt.timezone.utc)
ALL = list(StateType)


def proposal(current: StateType, asked: StateType) -> Proposal:
    return Proposal(current, current.value.title(), ProposedState(asked, asked.value.title()), NOW)


@pytest.mark.parametrize("current", sorted(TERMINAL_TYPES))
@pytest.mark.parametrize("asked", ALL)
def test_no_transition_out_of_terminal(current: StateType, asked: StateType) -> None:
    decision = NoTransitionOutOfTerminal().decide(proposal(current, asked))
    assert decision is not None and decision.outcome is Outcome.REJECT
    assert decision.rule == "NoTransitionOutOfTerminal"
    assert "final state" in decision.reason


@pytest.mark.parametrize("current", sorted(set(ALL) - TERMINAL_TYPES))
def test_no_transition_out_of_terminal_ignores_active_runs(current: StateType) -> None:
    assert NoTransitionOutOfTerminal().decide(proposal(current, StateType.COMPLETED)) is None


@pytest.mark.parametrize(
    ("current", "allowed"),
    [
        (StateType.RUNNING, True),
        (StateType.PENDING, True),
        (StateType.SCHEDULED, True),
        (StateType.PAUSED, True),
        (StateType.COMPLETED, False),
        (StateType.FAILED, False),
        (StateType.CRASHED, False),
        (StateType.CANCELLED, False),
        (StateType.CANCELLING, False),
    ],
)
def test_cancelling_only_from_active(current: StateType, allowed: bool) -> None:
    decision = CancellingOnlyFromActive().decide(proposal(current, StateType.CANCELLING))
    assert (decision is None) is allowed


def test_cancelling_only_from_active_ignores_other_proposals() -> None:
    assert CancellingOnlyFromActive().decide(proposal(StateType.FAILED, StateType.RUNNING)) is None


@pytest.mark.parametrize("current", [StateType.PENDING, StateType.SCHEDULED])
def test_cancel_not_started_goes_straight_to_cancelled(current: StateType) -> None:
    decision = CancelNotStartedDirectly().decide(proposal(current, StateType.CANCELLING))
    assert decision is not None and decision.outcome is Outcome.ACCEPT
    assert decision.state.type is StateType.CANCELLED and decision.state.name == "Cancelled"


@pytest.mark.parametrize("current", [StateType.RUNNING, StateType.PAUSED])
def test_cancel_of_started_run_is_left_cancelling(current: StateType) -> None:
    assert CancelNotStartedDirectly().decide(proposal(current, StateType.CANCELLING)) is None


@pytest.mark.parametrize("current", [StateType.CANCELLING, StateType.CANCELLED])
def test_cancel_is_idempotent(current: StateType) -> None:
    decision = CancelIsIdempotent().decide(proposal(current, StateType.CANCELLING))
    assert decision is not None and decision.outcome is Outcome.UNCHANGED


def test_cancel_is_idempotent_only_for_cancels() -> None:
    assert CancelIsIdempotent().decide(proposal(StateType.RUNNING, StateType.CANCELLING)) is None
    assert CancelIsIdempotent().decide(proposal(StateType.CANCELLING, StateType.FAILED)) is None


@pytest.mark.parametrize(
    ("current", "allowed"),
    [(StateType.RUNNING, True), (StateType.PAUSED, True), (StateType.PENDING, False),
     (StateType.SCHEDULED, False)],
)  # fmt: skip
def test_paused_only_from_running(current: StateType, allowed: bool) -> None:
    decision = PausedOnlyFromRunning().decide(proposal(current, StateType.PAUSED))
    assert (decision is None) is allowed


@pytest.mark.parametrize(
    "asked", [StateType.RUNNING, StateType.PENDING, StateType.SCHEDULED, StateType.PAUSED]
)
def test_no_running_while_cancelling(asked: StateType) -> None:
    decision = NoRunningWhileCancelling().decide(proposal(StateType.CANCELLING, asked))
    assert decision is not None and decision.outcome is Outcome.REJECT


@pytest.mark.parametrize("asked", [StateType.CANCELLED, StateType.FAILED, StateType.CRASHED])
def test_cancelling_run_may_finish(asked: StateType) -> None:
    assert NoRunningWhileCancelling().decide(proposal(StateType.CANCELLING, asked)) is None
    assert evaluate(proposal(StateType.CANCELLING, asked), SET_STATE_POLICY).accepted


# -- policies ---------------------------------------------------------------------------


def test_cancel_policy_outcomes() -> None:
    def cancel(current: StateType) -> tuple[Outcome, StateType]:
        decision = evaluate(proposal(current, StateType.CANCELLING), CANCEL_POLICY)
        return decision.outcome, decision.state.type

    assert cancel(StateType.RUNNING) == (Outcome.ACCEPT, StateType.CANCELLING)
    assert cancel(StateType.PAUSED) == (Outcome.ACCEPT, StateType.CANCELLING)
    assert cancel(StateType.PENDING) == (Outcome.ACCEPT, StateType.CANCELLED)
    assert cancel(StateType.SCHEDULED) == (Outcome.ACCEPT, StateType.CANCELLED)
    assert cancel(StateType.CANCELLING)[0] is Outcome.UNCHANGED
    assert cancel(StateType.CANCELLED)[0] is Outcome.UNCHANGED
    for finished in (StateType.COMPLETED, StateType.FAILED, StateType.CRASHED):
        assert cancel(finished)[0] is Outcome.REJECT


def test_policy_reports_first_refusing_rule() -> None:
    decision = evaluate(proposal(StateType.COMPLETED, StateType.RUNNING), SET_STATE_POLICY)
    assert decision.outcome is Outcome.REJECT
    assert decision.rule == "NoTransitionOutOfTerminal"


def test_plain_transitions_are_accepted() -> None:
    for current, asked in [
        (StateType.PENDING, StateType.RUNNING),
        (StateType.RUNNING, StateType.COMPLETED),
        (StateType.RUNNING, StateType.RUNNING),
        (StateType.PAUSED, StateType.RUNNING),
        (StateType.SCHEDULED, StateType.PENDING),
    ]:
        decision = evaluate(proposal(current, asked), SET_STATE_POLICY)
        assert decision.accepted and decision.state.type is asked, (current, asked)
