"""Running an existing flow run as that run: what resume and workers share.

A flow run that exists in the store runs again as itself (same id): resumed
in this process by :func:`sluice.resume_flow_run` (a Failed, Crashed or
Cancelled run), or executed by a worker's process
(:mod:`sluice.workers.execute`: a Scheduled or Pending run it claimed, maybe
one queued to resume). Both load the run's code (:func:`load_run_flow`) and
hand it to :func:`run_existing_flow_run`, which takes the run's next attempt,
replays its journal of completed task runs (up to a ``from_task``), and runs
the flow with its stored parameters to a final state. Which states a caller
accepts, and how it reports a run that cannot run, stay with the caller.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sluice.backend.factory import get_backend
from sluice.engine.flow_engine import FlowRunDriver, run_flow_async, run_flow_sync
from sluice.engine.flow_setup import entrypoint_of, stored_parameters
from sluice.engine.journal import Journal
from sluice.entrypoints import load_flow
from sluice.errors import CodeUnavailable, EntrypointError, RunNotStarted, StoreError
from sluice.logging.handlers import setup_logging
from sluice.resume_from import pending_from_task
from sluice.settings import load_settings
from sluice.utilities.asyncs import run_coroutine_sync

if TYPE_CHECKING:
    from sluice.backend.protocol import Backend
    from sluice.flows import Flow
    from sluice.schemas import FlowRunRecord
    from sluice.settings import Settings
    from sluice.states import State

_log = logging.getLogger("sluice.flow_runs")


def open_store() -> tuple[Settings, Backend]:
    """The settings of this process (their logging set up) and their store."""
    settings = load_settings()
    setup_logging(settings)
    return settings, get_backend(settings)


def load_run_flow(entrypoint: str | None, working_dir: str | None, run_id: str) -> Flow[..., Any]:
    """The flow at ``entrypoint`` (``path/file.py:flow`` or ``module:flow``), loaded
    from ``working_dir`` when given, which becomes the current directory.

    Raises:
        CodeUnavailable: no entrypoint, a missing working directory, or an
            entrypoint that cannot be loaded (the reason in the message).
    """
    if not entrypoint:
        raise CodeUnavailable(f"flow run {run_id} has no entrypoint to load its flow from")
    if working_dir:
        folder = Path(working_dir)
        if not folder.is_dir():
            raise CodeUnavailable(
                f"Cannot load entrypoint {entrypoint!r}: working directory {working_dir!r} "
                "does not exist"
            )
        os.chdir(folder)
        # Like ``python file.py`` run from there: the project's modules import.
        if str(folder) not in sys.path:
            sys.path.insert(0, str(folder))
    try:
        return load_flow(entrypoint)
    except EntrypointError as exc:
        raise CodeUnavailable(f"Cannot load entrypoint {entrypoint!r}: {exc}") from None


def run_existing_flow_run(
    flow: Flow[..., Any],
    record: FlowRunRecord,
    backend: Backend,
    settings: Settings,
    from_task: str | None = None,
) -> State:
    """Run ``flow`` as the existing run ``record`` until a final state; that state.

    The run takes its next attempt, which fences out any execution still
    holding an earlier one. A run that ran before replays its journal: each
    completed task run returns its stored result without being called, up to
    ``from_task`` (``NAME`` or ``NAME:INDEX``) or, when none is given, up to
    the one a queued resume left in the run's state history
    (:mod:`sluice.resume_from`).

    Raises:
        RunNotStarted: the store failed before the flow's code started.
        Superseded: another process took the run over.
    """
    try:
        journal = _journal(record, backend, from_task)
    except StoreError as exc:
        raise RunNotStarted(str(exc)) from exc
    parameters = stored_parameters(record, settings)
    # Absolute, so that ``sluice flow-run resume`` can load it from anywhere.
    record.entrypoint = entrypoint_of(flow) or record.entrypoint
    driver = FlowRunDriver(
        flow, (), parameters, resume=record, journal=journal, store=(settings, backend)
    )
    try:
        if flow.isasync:
            return run_coroutine_sync(run_flow_async(driver))
        return run_flow_sync(driver)
    except StoreError as exc:
        if driver.started:
            raise
        raise RunNotStarted(str(exc)) from exc


def _journal(record: FlowRunRecord, backend: Backend, from_task: str | None) -> Journal | None:
    """What the run replays: None for a run that never ran (unless asked from a task)."""
    if record.run_count == 0 and from_task is None:
        return None
    if from_task is None:
        from_task = pending_from_task(backend.read_states(record.id))
    return Journal(backend.read_journal(record.id), from_task, _log.warning)
