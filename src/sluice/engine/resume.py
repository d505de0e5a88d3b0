"""Resuming a failed, crashed or cancelled flow run as the same run."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from sluice.errors import NotResumableError
from sluice.states import RESUMABLE_TYPES, State

if TYPE_CHECKING:
    from sluice.flows import Flow


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
    """
    from sluice.backend.factory import get_backend
    from sluice.engine.flow_engine import FlowRunDriver, run_flow_async, run_flow_sync
    from sluice.engine.flow_setup import stored_parameters
    from sluice.engine.heartbeat import detect_crashed_runs
    from sluice.engine.journal import Journal, parse_from_key
    from sluice.logging.handlers import setup_logging
    from sluice.settings import load_settings
    from sluice.utilities.asyncs import run_coroutine_sync

    settings = load_settings()
    setup_logging(settings)
    backend = get_backend(settings)
    detect_crashed_runs(backend, settings)
    record = backend.read_flow_run(flow_run_id)
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
    flow = flow or _load_flow(record.entrypoint, record.id)
    parameters = stored_parameters(record, settings)
    log = logging.getLogger("sluice.flow_runs")
    journal = Journal(backend.read_journal(record.id), from_task, log.warning)
    driver = FlowRunDriver(flow, (), parameters, resume=record, journal=journal)
    if flow.isasync:
        return run_coroutine_sync(run_flow_async(driver))
    return run_flow_sync(driver)


def _load_flow(entrypoint: str | None, run_id: str) -> Flow[..., Any]:
    if not entrypoint:
        raise NotResumableError(
            f"Flow run {run_id} has no recorded entrypoint (its flow was defined inside a "
            "function or an interactive session); resume it from Python with "
            "resume_flow_run(id, flow=my_flow)"
        )
    from sluice.entrypoints import EntrypointError, load_flow

    try:
        return load_flow(entrypoint)
    except EntrypointError as exc:
        raise NotResumableError(f"Cannot load the flow of run {run_id}: {exc}") from None
