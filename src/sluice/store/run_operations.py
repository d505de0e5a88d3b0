"""The implementations of the operations on flows, runs, states, logs and attempts
(:mod:`sluice.operations.runs`): SQL of :mod:`sluice.store.queries` and
:mod:`sluice.store.writes`, one transaction each."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sqlalchemy import Connection

from sluice.errors import InvalidInputError, NotFoundError, TransitionRefused
from sluice.operations.runs import (
    CancelFlowRun,
    ClaimAttempt,
    CountFlowRuns,
    FindCachedTaskRun,
    ListFlowRuns,
    ListFlows,
    MarkGoneRunsCrashed,
    MarkLapsedRunsCrashed,
    ReadAttempt,
    ReadFlow,
    ReadFlowRun,
    ReadJournal,
    ReadLogs,
    ReadStates,
    ReadTaskRun,
    ReadTaskRuns,
    SetFlowRunState,
)
from sluice.orchestration import (
    CANCEL_POLICY,
    SET_STATE_POLICY,
    Outcome,
    Proposal,
    ProposedState,
    Rule,
    evaluate,
)
from sluice.schemas import FlowRecord, FlowRunRecord, LogRecord, StateRecord, TaskRunRecord
from sluice.states import StateType, utcnow
from sluice.store import queries, writes
from sluice.store.deployment_writes import set_run_state
from sluice.store.implementations import implements

#: the longest timeout a crash marking takes, in seconds (about 30 years)
MAX_TIMEOUT = 1e9


@implements(ReadFlow)
def read_flow(conn: Connection, op: ReadFlow) -> FlowRecord:
    return queries.get_flow(conn, op.name)


@implements(ListFlows)
def list_flows(conn: Connection, op: ListFlows) -> list[FlowRecord]:
    return queries.list_flows(conn, op.limit)


@implements(ReadFlowRun)
def read_flow_run(conn: Connection, op: ReadFlowRun) -> FlowRunRecord:
    return queries.get_flow_run(conn, op.flow_run_id)


@implements(ListFlowRuns)
def list_flow_runs(conn: Connection, op: ListFlowRuns) -> list[FlowRunRecord]:
    return queries.list_flow_runs(conn, op.filter())


@implements(CountFlowRuns)
def count_flow_runs(conn: Connection, op: CountFlowRuns) -> int:
    return queries.count_flow_runs(conn, op.filter())


@implements(ReadTaskRuns)
def read_task_runs(conn: Connection, op: ReadTaskRuns) -> list[TaskRunRecord]:
    return queries.list_task_runs(conn, op.flow_run_id)


@implements(ReadJournal)
def read_journal(conn: Connection, op: ReadJournal) -> list[TaskRunRecord]:
    return queries.list_journal(conn, op.flow_run_id)


@implements(ReadTaskRun)
def read_task_run(conn: Connection, op: ReadTaskRun) -> TaskRunRecord:
    return queries.get_task_run(conn, op.task_run_id)


@implements(FindCachedTaskRun)
def find_cached_task_run(conn: Connection, op: FindCachedTaskRun) -> TaskRunRecord | None:
    return queries.find_cached_task_run(conn, op.cache_key, op.now or utcnow())


@implements(ReadStates)
def read_states(conn: Connection, op: ReadStates) -> list[StateRecord]:
    return queries.list_states(conn, op.run_id)


@implements(ReadLogs)
def read_logs(conn: Connection, op: ReadLogs) -> list[LogRecord]:
    return queries.list_logs(
        conn,
        op.flow_run_id,
        task_run_id=op.task_run_id,
        min_level=op.min_level,
        offset=op.offset,
        limit=op.limit,
    )


# -- state changes people and tools ask for ------------------------------------------------


@implements(SetFlowRunState, writes=True)
def set_flow_run_state(conn: Connection, op: SetFlowRunState) -> FlowRunRecord:
    asked = ProposedState(op.type, op.name or op.type.value.title(), op.message)
    return _change_state(conn, op.flow_run_id, asked, SET_STATE_POLICY)


@implements(CancelFlowRun, writes=True)
def cancel_flow_run(conn: Connection, op: CancelFlowRun) -> FlowRunRecord:
    asked = ProposedState(StateType.CANCELLING, "Cancelling", "Cancellation requested")
    return _change_state(conn, op.flow_run_id, asked, CANCEL_POLICY)


def _change_state(
    conn: Connection, run_id: str, asked: ProposedState, rules: Sequence[Rule]
) -> FlowRunRecord:
    """Move a flow run to ``asked`` if ``rules`` allow it (read, decided and written in
    one transaction); the run afterwards."""
    run = queries.get_flow_run(conn, run_id)
    now = utcnow()
    decision = evaluate(Proposal(run.state_type, run.state_name, asked, now), rules)
    if decision.outcome is Outcome.REJECT:
        raise TransitionRefused(run.id, decision.rule, decision.reason)
    if decision.outcome is Outcome.UNCHANGED:
        return run
    state, at = decision.state, now.timestamp()
    if state.type is StateType.RUNNING and run.start_time is None:
        set_run_state(conn, run.id, state.type, state.name, state.message, at, start_time=at)
    else:
        set_run_state(conn, run.id, state.type, state.name, state.message, at)
    return queries.get_flow_run(conn, run.id)


# -- crash marking and attempts ------------------------------------------------------------


@implements(MarkLapsedRunsCrashed, writes=True)
def mark_lapsed_runs_crashed(conn: Connection, op: MarkLapsedRunsCrashed) -> list[str]:
    check_seconds("timeout", op.timeout, MAX_TIMEOUT)
    return writes.mark_lapsed_runs_crashed(conn, op.timeout)


@implements(MarkGoneRunsCrashed, writes=True)
def mark_gone_runs_crashed(conn: Connection, op: MarkGoneRunsCrashed) -> list[str]:
    gone = [(r.flow_run_id, r.host_id, r.pid, r.pid_started) for r in op.runs]
    return writes.mark_gone_runs_crashed(conn, gone) if gone else []


@implements(ClaimAttempt, writes=True)
def claim_attempt(conn: Connection, op: ClaimAttempt) -> int:
    attempt = writes.claim_attempt(conn, op.flow_run_id)
    if attempt is None:
        raise NotFoundError("flow run", op.flow_run_id)
    return attempt


@implements(ReadAttempt)
def read_attempt(conn: Connection, op: ReadAttempt) -> int:
    stored = writes.read_attempt(conn, op.flow_run_id)
    if stored is None:
        raise NotFoundError("flow run", op.flow_run_id)
    return stored


def check_seconds(name: str, value: float, most: float = math.inf) -> None:
    """Refuse a duration that is not a number of seconds from 0 to ``most``.

    Raises:
        InvalidInputError: naming the argument (``name``).
    """
    if type(value) not in (int, float) or not 0 <= value <= most or not math.isfinite(value):
        at_most = f" and <= {most:g}" if math.isfinite(most) else ""
        raise InvalidInputError(
            f"{name} must be a number of seconds >= 0{at_most}, not {value!r}", field=name
        )
