"""Resuming a failed, crashed or cancelled flow run as the same run, in this process."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sluice.engine.existing_run import load_run_flow, open_store, run_existing_flow_run
from sluice.engine.heartbeat import detect_crashed_runs
from sluice.engine.journal import parse_from_key
from sluice.errors import CodeUnavailable, NotResumableError
from sluice.states import RESUMABLE_TYPES, State

if TYPE_CHECKING:
    from sluice.flows import Flow
    from sluice.schemas import FlowRunRecord

__all__ = ["NotResumableError", "resume_flow_run"]


def resume_flow_run(
    flow_run_id: str, from_task: str | None = None, flow: Flow[..., Any] | None = None
) -> State:
    """Run a Failed, Crashed or Cancelled flow run again as the same run.

    Completed task runs recorded in its journal return their stored results
    without being called; everything else runs normally.

    Args:
        flow_run_id: the run's id or a unique prefix of it.
        from_task: ``TASK_NAME`` or ``TASK_NAME:INDEX``: replay only the calls
            before it and execute it and everything after it.
        flow: the flow object to run; default: loaded from the run's entrypoint.

    Returns:
        The run's final state.

    Raises:
        NotFoundError: no such run.
        NotResumableError: the run is not Failed/Crashed/Cancelled, or its code
            cannot be loaded.
        RunNotStarted: the store failed before the flow started again.
    """
    settings, backend = open_store()
    detect_crashed_runs(backend, settings)
    record = backend.read_flow_run(flow_run_id)
    _check_resumable(record, from_task)
    flow = flow or _load_flow(record)
    return run_existing_flow_run(flow, record, backend, settings, from_task)


def _check_resumable(record: FlowRunRecord, from_task: str | None) -> None:
    if record.state_type not in RESUMABLE_TYPES:
        raise NotResumableError(
            f"Flow run {record.id} is {record.state_name}; only Failed, Crashed or "
            "Cancelled runs can be resumed"
        )
    if from_task is not None:
        try:
            parse_from_key(from_task)
        except ValueError as exc:
            raise NotResumableError(str(exc)) from None


def _load_flow(record: FlowRunRecord) -> Flow[..., Any]:
    if not record.entrypoint:
        raise NotResumableError(
            f"Flow run {record.id} has no recorded entrypoint (its flow was defined inside a "
            "function or an interactive session); resume it from Python with "
            "resume_flow_run(id, flow=my_flow)"
        )
    try:
        return load_run_flow(record.entrypoint, None, record.id)
    except CodeUnavailable as exc:
        raise NotResumableError(f"Cannot resume flow run {record.id}: {exc}") from None
