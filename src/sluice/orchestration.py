"""Rules for state changes people and tools ask for (set state, cancel).

The server applies them to its API, the embedded store to the CLI and workers
(the implementations of the set-state and cancel operations,
:mod:`sluice.store.run_operations`), so both modes decide alike.

A change is a :class:`Proposal` (the run's current state, the state asked
for, and "now"). Each rule is a small named class that looks at the proposal
and either lets it through, refuses it with a reason, replaces the proposed
state (a cancel of a run that never started becomes Cancelled at once) or
says nothing needs doing. :func:`evaluate` applies a policy's rules in order;
the first rule that decides anything other than "accept" wins.

The rules are pure: no I/O, no clock (``now`` is part of the proposal), so
each is unit-tested on its own. The engine's own state changes go through
ingest, not through these rules: resuming a Failed or Crashed run is the
engine's business, and the rules here guard what *people and tools* ask for.
"""

from __future__ import annotations

import abc
import datetime as _dt
import enum
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import ClassVar

from sluice.states import TERMINAL_TYPES, StateType

#: states of a run that is alive (or about to be): the ones a cancel can stop
ACTIVE_TYPES = frozenset(
    {StateType.SCHEDULED, StateType.PENDING, StateType.RUNNING, StateType.PAUSED}
)
#: states of a run whose code never started: nothing is running to be told to stop
NOT_STARTED_TYPES = frozenset({StateType.SCHEDULED, StateType.PENDING})


@dataclass(frozen=True)
class ProposedState:
    """The state asked for: a type, a name shown to people, and why."""

    type: StateType
    name: str
    message: str | None = None


@dataclass(frozen=True)
class Proposal:
    """A state change asked for a run.

    Attributes:
        current: the run's state type now.
        current_name: its state name now (``Retrying``, ``Late`` ...).
        proposed: the state asked for.
        now: the time the change is evaluated at.
    """

    current: StateType
    current_name: str
    proposed: ProposedState
    now: _dt.datetime


class Outcome(str, enum.Enum):
    """What a rule decided."""

    ACCEPT = "accept"
    REJECT = "reject"
    #: the run is already where the proposal would take it: write nothing
    UNCHANGED = "unchanged"


@dataclass(frozen=True)
class Decision:
    """The verdict on a proposal: an outcome, the state to write, and which rule said so."""

    outcome: Outcome
    state: ProposedState
    rule: str = ""
    reason: str = ""

    @property
    def accepted(self) -> bool:
        return self.outcome is Outcome.ACCEPT


class Rule(abc.ABC):
    """One named rule. ``decide`` returns ``None`` to let the proposal through."""

    name: ClassVar[str]

    def __init_subclass__(cls) -> None:
        cls.name = cls.__name__

    @abc.abstractmethod
    def decide(self, proposal: Proposal) -> Decision | None:
        """The rule's verdict on ``proposal``; None lets it through."""

    def reject(self, proposal: Proposal, reason: str) -> Decision:
        return Decision(Outcome.REJECT, proposal.proposed, self.name, reason)


class CancelIsIdempotent(Rule):
    """Cancelling a run that is already Cancelling (or Cancelled) changes nothing.

    A user pressing "cancel" twice, or a client retrying the request, must get
    the run back rather than an error.
    """

    def decide(self, proposal: Proposal) -> Decision | None:
        asked, current = proposal.proposed.type, proposal.current
        if asked is StateType.CANCELLING and current in (
            StateType.CANCELLING,
            StateType.CANCELLED,
        ):
            return Decision(Outcome.UNCHANGED, proposal.proposed, self.name, "already cancelling")
        return None


class NoTransitionOutOfTerminal(Rule):
    """A Completed, Failed, Crashed or Cancelled run stays that way.

    Resuming a finished run is done by the engine (``sluice flow-run resume``),
    which re-runs the flow and replays its journal; flipping the recorded
    state alone would show a run as Running with nothing running it.
    """

    def decide(self, proposal: Proposal) -> Decision | None:
        if proposal.current in TERMINAL_TYPES:
            return self.reject(
                proposal,
                f"the run is {proposal.current_name} (a final state); "
                f"it cannot become {proposal.proposed.name} (resume it instead)",
            )
        return None


class CancelNotStartedDirectly(Rule):
    """A cancel of a run that never started goes straight to Cancelled.

    Cancelling is a request to a running process to stop; a Scheduled or
    Pending run has no such process, so nobody would ever finish the cancel.
    """

    def decide(self, proposal: Proposal) -> Decision | None:
        if proposal.proposed.type is StateType.CANCELLING and proposal.current in NOT_STARTED_TYPES:
            state = replace(proposal.proposed, type=StateType.CANCELLED, name="Cancelled")
            return Decision(Outcome.ACCEPT, state, self.name, "the run never started")
        return None


class CancellingOnlyFromActive(Rule):
    """Cancelling only from Running, Pending, Scheduled or Paused."""

    def decide(self, proposal: Proposal) -> Decision | None:
        if proposal.proposed.type is StateType.CANCELLING and proposal.current not in ACTIVE_TYPES:
            return self.reject(
                proposal,
                f"only an active run can be cancelled; this one is {proposal.current_name}",
            )
        return None


class PausedOnlyFromRunning(Rule):
    """Only a Running run can pause: pausing is something the run's own code does."""

    def decide(self, proposal: Proposal) -> Decision | None:
        if proposal.proposed.type is StateType.PAUSED and proposal.current not in (
            StateType.RUNNING,
            StateType.PAUSED,
        ):
            return self.reject(
                proposal, f"only a Running run can be paused; this one is {proposal.current_name}"
            )
        return None


class NoRunningWhileCancelling(Rule):
    """A run asked to stop is not started again until it has stopped."""

    def decide(self, proposal: Proposal) -> Decision | None:
        if proposal.current is StateType.CANCELLING and proposal.proposed.type in (
            StateType.RUNNING,
            StateType.PENDING,
            StateType.SCHEDULED,
            StateType.PAUSED,
        ):
            return self.reject(
                proposal, f"the run is being cancelled; it cannot become {proposal.proposed.name}"
            )
        return None


#: rules for ``POST /flow_runs/{id}/set_state``, in order
SET_STATE_POLICY: tuple[Rule, ...] = (
    CancelIsIdempotent(),
    NoTransitionOutOfTerminal(),
    CancelNotStartedDirectly(),
    CancellingOnlyFromActive(),
    PausedOnlyFromRunning(),
    NoRunningWhileCancelling(),
)
#: rules for ``POST /flow_runs/{id}/cancel`` (the proposal is always Cancelling)
CANCEL_POLICY: tuple[Rule, ...] = (
    CancelIsIdempotent(),
    NoTransitionOutOfTerminal(),
    CancelNotStartedDirectly(),
    CancellingOnlyFromActive(),
)


def evaluate(proposal: Proposal, rules: Sequence[Rule]) -> Decision:
    """Apply ``rules`` in order; the first decision that is not a plain accept wins.

    A rule may accept while replacing the proposed state; later rules then see
    the replaced state (so a Cancelling turned Cancelled is not refused by a
    rule about Cancelling).
    """
    current = proposal
    decided: Decision | None = None
    for rule in rules:
        decision = rule.decide(current)
        if decision is None:
            continue
        if decision.outcome is not Outcome.ACCEPT:
            return decision
        decided = decision
        current = replace(current, proposed=decision.state)
    return decided or Decision(Outcome.ACCEPT, current.proposed)


__all__ = [
    "ACTIVE_TYPES",
    "CANCEL_POLICY",
    "SET_STATE_POLICY",
    "CancelIsIdempotent",
    "CancelNotStartedDirectly",
    "CancellingOnlyFromActive",
    "Decision",
    "NoRunningWhileCancelling",
    "NoTransitionOutOfTerminal",
    "Outcome",
    "PausedOnlyFromRunning",
    "Proposal",
    "ProposedState",
    "Rule",
    "evaluate",
]
